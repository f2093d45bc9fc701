// netfilter: reading iptables tables (legacy xtables, through libiptc).
import { kernelCall } from '../errors.js';
import type { NetnsOption } from '../links.js';
import { native } from '../native.js';
import { decodeTable } from './decode.js';
import type { IpFamily, Table } from './types.js';

export { saveRule, saveTable, type SaveOptions } from './save.js';
export { apply, diff, OWNED_PREFIX, type ApplyOptions, type ApplyResult } from './apply.js';
export { legacyBackend, nftBackend, type NetfilterBackend } from './backend.js';
export { applyNft, diffNft, type NftApplyOptions } from './nft/backend.js';
export { describeNftRule, type DescribeOptions } from './nft/describe.js';
export { encodeNftRule, type NftRule } from './nft/encode.js';
export { NFT_TABLE } from './nft/layout.js';
export { RuleValidationError, MAX_CHAIN_NAME } from './validate.js';
export { encodeRule, type EncodedRule } from './encode.js';
export { deepFreeze } from './frozen.js';
export type { ExtensionSpec, RuleSpec, TargetSpec, TableState } from './spec.js';
export * as build from './build.js';
export { formatIPv6 } from './addresses.js';
export type * from './types.js';
export type { PortRange, TcpOptions, UdpOptions, SctpOptions, IcmpOptions, CommentOptions, AddrtypeOptions, ConntrackOptions, StateOptions, MarkMatchOptions, MultiportOptions, StatisticOptions, RecentOptions, LimitOptions } from './matches.js';
export type { NatOptions, MarkTargetOptions, CtOptions, RejectOptions, LogOptions } from './targets.js';

export interface FamilyOption extends NetnsOption {
  /** Default `ipv4`. */
  family?: IpFamily;
}

export interface ReadOptions extends FamilyOption {
  /** `filter`, `nat`, `mangle`, `raw`, `security`. */
  table: string;
}

function familyNumber(family: IpFamily | undefined): 4 | 6 {
  if (family === undefined || family === 'ipv4') return 4;
  if (family === 'ipv6') return 6;
  throw new TypeError(`family must be "ipv4" or "ipv6", not ${JSON.stringify(family)}`);
}

/**
 * The legacy iptables tables that exist in the namespace, in the order iptables-save lists them.
 * Never creates a table.
 */
export async function tables(options: FamilyOption = {}): Promise<string[]> {
  return kernelCall(native().listTables(familyNumber(options.family), options.netns));
}

/**
 * A snapshot of one legacy iptables table: chains, policies, counters and every rule in structured
 * form. Rejects with a KernelError whose code is `ENOENT` when the table does not exist (reading
 * never creates it), `EACCES`/`EPERM` without CAP_NET_ADMIN.
 */
export async function read(options: ReadOptions): Promise<Table> {
  const family = familyNumber(options.family);
  const raw = await kernelCall(native().readTable(family, options.table, options.netns));
  return decodeTable(raw);
}
