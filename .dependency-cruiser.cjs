// Layer rules for src/ (ARCHITECTURE.md): a layer may import its own and lower layers,
// never a higher one; only src/flight/ talks to grpc-js; no import cycles. Run by `npm test`.
const layers = [
  ['core', '^src/(core/|errors\\.ts$|version\\.ts$)'],
  ['config and ipc', '^src/(config|ipc)/'],
  ['routing, durable stores, limits and auth', '^src/(routing|durable|limits|auth)/'],
  ['storage and durability', '^src/(storage|durability)/'],
  ['coordination and datasets', '^src/(coordination|datasets)/'],
  ['jobs', '^src/jobs/'],
  ['metrics and flight', '^src/(metrics|flight)/'],
  ['client', '^src/client/'],
  ['cluster', '^src/cluster/'],
  ['node (composition and lifecycle)', '^src/node/'],
  ['cli', '^src/cli/'],
];

const upward = layers.slice(0, -1).map(([name, path], i) => ({
  name: `no-upward-from-${name.replace(/\W+/g, '-')}`,
  comment: `${name} must not import a higher layer (${layers
    .slice(i + 1)
    .map(([n]) => n)
    .join(', ')})`,
  severity: 'error',
  from: { path },
  to: { path: layers.slice(i + 1).map(([, p]) => p) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'grpc-js-only-in-flight',
      comment:
        'only src/flight/ (and the Flight client) may import grpc-js: storage, limits and auth stay testable without gRPC',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(flight|client)/' },
      to: { path: 'node_modules/@grpc/' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycles',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
