import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './python-env.js';

/**
 * Builds the Go and Java test clients (test/go on arrow-go, test/java on Arrow Java) into
 * the git-ignored .clients folder, reusing a build while its sources are unchanged. Their
 * libraries come from the Go module proxy and Maven Central; Go and a JDK with Maven must
 * be on the PATH.
 */
export const CLIENTS = path.join(ROOT, '.clients');
export const GO_CLIENT = path.join(CLIENTS, 'go', 'flightcheck');
/** promtool's metrics linter (client_golang's promlint), reading exposition text on stdin. */
export const METRICS_LINT = path.join(CLIENTS, 'go', 'metricslint');
export const JAVA_CLASSPATH = [
  path.join(CLIENTS, 'java', 'classes'),
  path.join(CLIENTS, 'java', 'dependency', '*'),
].join(path.delimiter);

/** `java` arguments that run the Java test client (test/java); append its own arguments. */
export const JAVA_CHECK = [
  '--add-opens=java.base/java.nio=ALL-UNNAMED',
  '-cp',
  JAVA_CLASSPATH,
  'tierflight.FlightCheck',
];

function buildIfChanged(name: string, sources: string[], build: () => void): void {
  const hash = createHash('sha256');
  for (const file of sources) hash.update(file).update(readFileSync(path.join(ROOT, file)));
  const want = hash.digest('hex');
  const marker = path.join(CLIENTS, `.${name}-sources`);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return;
  process.stdout.write(`test setup: building the ${name} test client into ${CLIENTS}\n`);
  mkdirSync(CLIENTS, { recursive: true });
  try {
    build();
  } catch (err) {
    throw new Error(
      `building the ${name} test client failed (is ${name === 'go' ? 'Go' : 'a JDK with Maven'} installed?)`,
      {
        cause: err,
      },
    );
  }
  writeFileSync(marker, want);
}

export default function setup(): void {
  const go = (output: string, pkg: string): void => {
    execFileSync('go', ['build', '-o', output, pkg], {
      cwd: path.join(ROOT, 'test/go'),
      stdio: 'inherit',
      env: { ...process.env, GOFLAGS: '-mod=readonly' },
    });
  };
  buildIfChanged('go', ['test/go/main.go', 'test/go/metricslint/main.go', 'test/go/go.mod', 'test/go/go.sum'], () => {
    go(GO_CLIENT, '.');
    go(METRICS_LINT, './metricslint');
  });
  buildIfChanged('java', ['test/java/pom.xml', 'test/java/src/main/java/tierflight/FlightCheck.java'], () =>
    execFileSync('mvn', ['-q', '-B', 'package', 'dependency:copy-dependencies', '-DincludeScope=runtime'], {
      cwd: path.join(ROOT, 'test/java'),
      stdio: 'inherit',
    }),
  );
}
