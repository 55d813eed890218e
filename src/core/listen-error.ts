/** Why a port could not be bound, in one line naming the setting to change. */
export function listenError(setting: string, address: string, err: Error): Error {
  const inUse = /EADDRINUSE/.test(err.message) || (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
  const denied = /EACCES/.test(err.message) || (err as NodeJS.ErrnoException).code === 'EACCES';
  const why = inUse
    ? 'the address is in use by another process: stop it, or choose another port'
    : denied
      ? 'not allowed to listen there (a port below 1024 needs privileges)'
      : err.message;
  return new Error(`cannot listen on ${address} (${setting}): ${why}`);
}
