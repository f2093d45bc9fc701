// The agent's environment: defaults, every invalid value reported with its variable's name, all at
// once; the duration and address forms.
import t from 'tap';

import { agentConfigFromEnv, agentSetupFromEnv } from '../../lib/controller/node-fixes/config.js';
import { ConfigError, parseDuration, parseListenAddress } from '../../lib/controller/settings.js';

t.test('defaults', async (t) => {
  const r = agentConfigFromEnv({ NODE_NAME: 'node-a' });
  if (!('config' in r)) return t.fail(r.errors.join('\n'));
  t.match(r.config, {
    proxyMode: 'auto',
    resyncPeriodMs: 60_000,
    listen: { host: '0.0.0.0', port: 9402 },
    nodeName: 'node-a',
    lockFile: '/run/nodenet.lock',
    backend: 'auto',
    fixes: { dropInvalidInput: true, externalCluster: false, notrackDns: false, families: ['ipv4'] },
  });
  t.same(r.config.shaping, { enabled: true, netnsDirs: ['/var/run/netns'], procRoot: '/proc', stateFile: '/run/nodenet/shaping.json' });
});

t.test('shaping settings', async (t) => {
  const r = agentConfigFromEnv({ NODE_NAME: 'n', SHAPING: 'False', SHAPING_NETNS_DIRS: '/run/netns, /var/run/crio/ns', SHAPING_PROC_ROOT: 'none', SHAPING_STATE_FILE: 'none' });
  if (!('config' in r)) return t.fail(r.errors.join('\n'));
  t.same(r.config.shaping, { enabled: false, netnsDirs: ['/run/netns', '/var/run/crio/ns'], procRoot: null, stateFile: null });
  t.match(agentConfigFromEnv({ NODE_NAME: 'n', SHAPING: 'yes' }), { errors: ['SHAPING must be true or false, not "yes"'] });
  t.match(agentConfigFromEnv({ NODE_NAME: 'n', SHAPING_NETNS_DIRS: 'netns' }), { errors: ['SHAPING_NETNS_DIRS must be an absolute path, not "netns"'] });
  t.match(agentConfigFromEnv({ NODE_NAME: 'n', SHAPING_STATE_FILE: 'state.json' }), { errors: ['SHAPING_STATE_FILE must be an absolute path, not "state.json"'] });
});

t.test('every setting the agent adds', async (t) => {
  const r = agentConfigFromEnv({
    NODE_NAME: 'ip-10-0-0-1.eu-west-1.compute.internal',
    PROXY_MODE: 'nftables',
    RESYNC_PERIOD: '1m30s',
    METRICS_ADDRESS: '[::]:9500',
    NODENET_LOCK_FILE: '/var/run/n.lock',
    RULE_EXTERNAL_CLUSTER_ENABLE: 'TRUE',
    BACKEND: 'iptables-legacy',
  });
  if (!('config' in r)) return t.fail(r.errors.join('\n'));
  t.match(r.config, { backend: 'iptables-legacy', proxyMode: 'nftables', resyncPeriodMs: 90_000, listen: { host: '::', port: 9500 }, lockFile: '/var/run/n.lock', fixes: { externalCluster: true } });
});

t.test('each invalid value is named, all at once', async (t) => {
  const r = agentConfigFromEnv({
    PROXY_MODE: 'userspace',
    RESYNC_PERIOD: '0s',
    METRICS_ADDRESS: 'localhost',
    NODENET_LOCK_FILE: 'relative.lock',
    BACKEND: 'iptables',
    RULE_DROP_INVALID_INPUT_ENABLE: '1',
  });
  if (!('errors' in r)) return t.fail('accepted');
  t.same(
    r.errors.map((e) => e.split(/[ =]/)[0]).sort(),
    ['BACKEND', 'METRICS_ADDRESS', 'NODENET_LOCK_FILE', 'NODE_NAME', 'PROXY_MODE', 'RESYNC_PERIOD', 'RULE_DROP_INVALID_INPUT_ENABLE'],
    'one message per variable, each starting with its name',
  );
  t.ok(r.errors.includes('NODE_NAME is required: the name of the Node this agent runs on (a DaemonSet sets it from spec.nodeName)'));
  t.match(agentConfigFromEnv({ NODE_NAME: 'Node_A' }), { errors: ['NODE_NAME must be a Node name (a lower-case DNS subdomain), not "Node_A"'] });
});

t.test('credentials: KUBECONFIG, or in-cluster, or a named error', async (t) => {
  t.match(agentSetupFromEnv({ NODE_NAME: 'n' }), { errors: [/^KUBECONFIG is not set and this is not a Pod/] });
  t.match(agentSetupFromEnv({ NODE_NAME: 'n', KUBECONFIG: '/nonexistent' }), { errors: [/^KUBECONFIG cannot load \/nonexistent/] });
  t.match(agentSetupFromEnv({ KUBECONFIG: '/nonexistent' }), { errors: [/^NODE_NAME/, /^KUBECONFIG/] }, 'reported together with the rest');
});

t.test('durations', async (t) => {
  t.equal(parseDuration('X', '60s'), 60_000);
  t.equal(parseDuration('X', '500ms'), 500);
  t.equal(parseDuration('X', '2h'), 7_200_000);
  t.equal(parseDuration('X', '1.5s'), 1500);
  t.equal(parseDuration('X', '1m30s'), 90_000);
  for (const bad of ['60', 's', '-1s', '1d', '0ms', ' 1s', '1s ']) t.throws(() => parseDuration('RESYNC_PERIOD', bad), { name: 'ConfigError', variable: 'RESYNC_PERIOD' }, bad);
});

t.test('listen addresses', async (t) => {
  t.same(parseListenAddress('X', '0.0.0.0:9402'), { host: '0.0.0.0', port: 9402 });
  t.same(parseListenAddress('X', '127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(parseListenAddress('X', '[fd00::1]:80'), { host: 'fd00::1', port: 80 });
  t.same(parseListenAddress('X', 'localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['9402', ':9402', '0.0.0.0:65536', 'fd00::1:80', '0.0.0.0:http']) t.throws(() => parseListenAddress('METRICS_ADDRESS', bad), ConfigError, bad);
});
