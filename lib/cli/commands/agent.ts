import { NodeLockBusyError } from '../../controller/node-lock.js';
import { startNodeFixesAgent } from '../../controller/node-fixes/agent.js';
import { agentSetupFromEnv } from '../../controller/node-fixes/config.js';
import { createLogger } from '../../log.js';

export const agentHelp = `nodenet agent [--netns PATH]
  The DaemonSet's process: keeps the node fixes' netfilter rules in line with the cluster's
  Services, and this node's pods shaped as their annotations ask, until SIGTERM or SIGINT, which
  stop it and leave the rules and qdiscs in place. --netns runs it
  against another network namespace (a sandbox node). Configured by environment variables:
    RULE_DROP_INVALID_INPUT_ENABLE  true|false (default true)
    RULE_EXTERNAL_CLUSTER_ENABLE    true|false (default false; IPVS proxy mode only)
    RULE_EXTERNAL_IPS_ENABLE        true|false (default false): also redirect spec.externalIPs
    RULE_NOT_TRACK_DNS_ENABLE       true|false (default false; IPVS proxy mode only)
    RULE_NOT_TRACK_DNS_SERVICES     name or namespace/name, comma-separated (default kube-dns)
    POD_CIDR_IPV4, POD_CIDR_IPV6    pod CIDRs (default: the Node's spec.podCIDRs)
    NET_STACK                       ipv4, ipv6 or ipv4,ipv6 (default ipv4)
    MASQUERADE_BIT                  kube-proxy's masquerade bit, 0-31 (default 14)
    PROXY_MODE                      auto|ipvs|iptables|nftables (default auto: ipvs if kube-ipvs0 exists)
    BACKEND                         auto|iptables-legacy|nftables (default auto: as kube-proxy's
                                    iptables-wrappers detect it; see nodenet version)
    SHAPING                         true|false (default true): shape pods by their annotations
    SHAPING_NETNS_DIRS              the runtime's pod namespace files, comma-separated
                                    (default /var/run/netns)
    SHAPING_PROC_ROOT               the host's /proc, to find a pod by its processes when its IP
                                    does not lead to it; none turns that off (default /proc)
    SHAPING_STATE_FILE              when each pod's shaping began, for duration expiries across
                                    restarts; none keeps it in memory (default /run/nodenet/shaping.json)
    OVERLAYS                        true|false (default false): bridges and VXLANs from Link
                                    resources (install deploy/crds first)
    RESYNC_PERIOD                   full resync period, e.g. 60s, 1m30s (default 60s)
    METRICS_ADDRESS                 host:port of /healthz, /readyz, /metrics (default 0.0.0.0:9402)
    NODE_NAME                       this Node's name (required)
    NODENET_LOCK_FILE               one agent per node (default /run/nodenet.lock)
    KUBECONFIG                      kubeconfig file (default: the Pod's ServiceAccount)
  An invalid value stops it with exit status 2 and a message naming the variable.`;

export async function agentCommand(options: { netns?: string }): Promise<string> {
  const setup = agentSetupFromEnv(process.env);
  if ('errors' in setup) return configFailure('agent', setup.errors);
  const log = createLogger('nodenet-agent');
  let agent;
  try {
    agent = await startNodeFixesAgent({ ...setup, ...options, log });
  } catch (error) {
    if (!(error instanceof NodeLockBusyError)) throw error;
    process.stderr.write(`nodenet agent: ${error.message}\n`);
    process.exitCode = 1;
    return '';
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info({ signal }, `${signal}: stopping`);
  await agent.stop();
  return '';
}

/** Reports every configuration problem and sets exit status 2; the command prints nothing else. */
export function configFailure(command: string, errors: string[]): string {
  process.stderr.write(`nodenet ${command}: invalid configuration:\n${errors.map((e) => `  ${e}\n`).join('')}`);
  process.exitCode = 2;
  return '';
}
