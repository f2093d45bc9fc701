// Which addon this run exercises: the kernel stage runs twice, once on the regular build and once
// on the sanitizer build (test/run sets NODENET_EXPECT_SANITIZERS for that one).
import t from 'tap';

import { runtime } from '../../lib/kernel/index.js';

t.test('the addon under test is the one the stage asked for', async (t) => {
  const v = runtime.versions();
  if (process.env.NODENET_EXPECT_SANITIZERS) {
    t.equal(v.sanitizers, 'address,undefined', `sanitizer build loaded from ${v.path}`);
    t.equal(v.path, process.env.NODENET_ADDON);
  } else {
    t.equal(v.sanitizers, undefined, `regular build loaded from ${v.path}`);
  }
});
