// Which netfilter backend this node's other writers use, decided the way kube-proxy's images decide
// it (kubernetes-sigs/iptables-wrappers), so that nodenet's rules live in the same world as
// kube-proxy's and kubelet's and their relative order can be reasoned about:
//   1. kubelet's hint chains (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) in the nft mangle tables ⇒ nft;
//   2. the same chains in legacy mangle ⇒ legacy;
//   3. more legacy rules than nft rules (an older kubelet without hints) ⇒ legacy;
//   4. otherwise nft — and legacy when the kernel has no nf_tables at all.
// Reading must not change what it reads: legacy tables are only read when the kernel already lists
// them (reading a missing one through libiptc would load its module and create it), and nodenet's
// own chains and tables never count as evidence, or its first choice would become self-fulfilling.
import { kernelCall } from '../errors.js';
import type { NetnsOption } from '../links.js';
import { native } from '../native.js';
import { OWNED_PREFIX } from './apply.js';
import { decodeTable } from './decode.js';
import type { IpFamily } from './types.js';

export type BackendName = 'iptables-legacy' | 'nftables';
export type BackendSetting = 'auto' | BackendName;
export const BACKEND_SETTINGS: readonly BackendSetting[] = ['auto', 'iptables-legacy', 'nftables'];

/** The nft table nodenet writes in each family (never evidence of anyone else's use of nft). */
export const NFT_TABLE = 'nodenet';

export const HINT_CHAINS: readonly string[] = ['KUBE-IPTABLES-HINT', 'KUBE-KUBELET-CANARY'];

const NFPROTO_IPV4 = 2;
const NFPROTO_IPV6 = 10;

export interface BackendEvidence {
  /** `ip mangle KUBE-IPTABLES-HINT`, ... found through nf_tables. */
  nftHints: string[];
  /** `ipv4 mangle KUBE-IPTABLES-HINT`, ... found in legacy tables. */
  legacyHints: string[];
  /** Rules in ip/ip6 nft tables other than nodenet's. */
  nftRules: number;
  /** Rules in legacy tables outside nodenet's chains, jumps into them not counted. */
  legacyRules: number;
  /** Legacy tables the kernel lists, `ipv4 filter`, ... */
  legacyTables: string[];
  /** Whether nf_tables answered (false: the kernel has no nf_tables, or it is not loadable). */
  nftAvailable: boolean;
  /** Why nf_tables did not answer, when it did not. */
  nftError: string | null;
}

export interface BackendChoice {
  backend: BackendName;
  /** Set by BACKEND rather than detected. */
  forced: boolean;
  /** One sentence: the rule that decided. */
  reason: string;
  evidence: BackendEvidence;
}

const FAMILIES: Array<{ family: IpFamily; nfproto: number; nftName: string }> = [
  { family: 'ipv4', nfproto: NFPROTO_IPV4, nftName: 'ip' },
  { family: 'ipv6', nfproto: NFPROTO_IPV6, nftName: 'ip6' },
];

async function nftEvidence(options: NetnsOption, evidence: BackendEvidence): Promise<void> {
  let dump;
  try {
    dump = await native().nftDump({ rules: true }, options.netns);
  } catch (error) {
    // No nf_tables in this kernel (or not loadable here): legacy is then the only world there is.
    evidence.nftAvailable = false;
    evidence.nftError = error instanceof Error ? error.message : String(error);
    return;
  }
  for (const { nfproto, nftName } of FAMILIES) {
    for (const chain of dump.chains) {
      if (chain.family === nfproto && chain.table === 'mangle' && HINT_CHAINS.includes(chain.name)) evidence.nftHints.push(`${nftName} mangle ${chain.name}`);
    }
    evidence.nftRules += dump.rules.filter((r) => r.family === nfproto && r.table !== NFT_TABLE).length;
  }
}

function ownedJump(target: { kind: string; chain?: string }): boolean {
  return target.kind === 'jump' && typeof target.chain === 'string' && target.chain.startsWith(OWNED_PREFIX);
}

async function legacyEvidence(options: NetnsOption, evidence: BackendEvidence): Promise<void> {
  for (const { family } of FAMILIES) {
    const nfamily = family === 'ipv4' ? 4 : 6;
    // Lists what /proc says exists: a kernel without legacy xtables lists nothing.
    const names = await kernelCall(native().listTables(nfamily, options.netns));
    for (const name of names) {
      evidence.legacyTables.push(`${family} ${name}`);
      let table;
      try {
        table = decodeTable(await native().readTable(nfamily, name, options.netns));
      } catch {
        // A table that vanished between listing and reading is no evidence either way.
        continue;
      }
      for (const chain of table.chains) {
        if (name === 'mangle' && HINT_CHAINS.includes(chain.name)) evidence.legacyHints.push(`${family} mangle ${chain.name}`);
        if (chain.name.startsWith(OWNED_PREFIX)) continue;
        evidence.legacyRules += chain.rules.filter((r) => !ownedJump(r.target)).length;
      }
    }
  }
}

/** Reads the evidence and picks a backend (or reports the forced one, with the evidence anyway). */
export async function detectBackend(options: NetnsOption & { setting?: BackendSetting } = {}): Promise<BackendChoice> {
  const setting = options.setting ?? 'auto';
  const evidence: BackendEvidence = { nftHints: [], legacyHints: [], nftRules: 0, legacyRules: 0, legacyTables: [], nftAvailable: true, nftError: null };
  await nftEvidence(options, evidence);
  await legacyEvidence(options, evidence);
  const choice = (backend: BackendName, reason: string): BackendChoice => ({ backend, forced: false, reason, evidence });

  if (setting !== 'auto') return { backend: setting, forced: true, reason: `BACKEND=${setting}`, evidence };
  if (evidence.nftHints.length) return choice('nftables', `kubelet's hint chains are in nf_tables (${evidence.nftHints.join(', ')})`);
  if (evidence.legacyHints.length) return choice('iptables-legacy', `kubelet's hint chains are in legacy iptables (${evidence.legacyHints.join(', ')})`);
  if (!evidence.nftAvailable) return choice('iptables-legacy', `nf_tables is not available (${evidence.nftError ?? 'no answer'})`);
  if (evidence.legacyRules > evidence.nftRules) {
    return choice('iptables-legacy', `no hint chains; legacy iptables holds ${evidence.legacyRules} rules and nf_tables ${evidence.nftRules}`);
  }
  return choice('nftables', `no hint chains; nf_tables holds ${evidence.nftRules} rules and legacy iptables ${evidence.legacyRules}`);
}
