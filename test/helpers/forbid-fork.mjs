// Preloaded (node --import) into nodenet processes under test: any attempt to start a child
// process throws and is reported on stderr, so a test fails if the product ever forks.
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  childProcess[name] = () => {
    process.stderr.write(`FORBIDDEN FORK: child_process.${name}\n`);
    throw new Error(`nodenet must not fork (child_process.${name})`);
  };
}
syncBuiltinESMExports();
