// Everything (product, tests, benchmarks) type-checks under strict mode.
import t from 'tap';

import { repoRoot } from '../helpers/dist.js';
import { runAllowingFailure } from '../helpers/exec.js';

t.test('tsc --noEmit on tsconfig.check.json', async (t) => {
  const result = await runAllowingFailure(process.execPath, [`${repoRoot}/node_modules/typescript/bin/tsc`, '-p', `${repoRoot}/tsconfig.check.json`]);
  t.equal(result.code, 0, result.stdout + result.stderr);
});
