// This node's NodeNetworkStatus: one object per node, named after it and owned by its Node (so it
// goes when the Node goes), holding a Ready condition per Link that applies here. Written only
// when what it says changes — a resync that finds the node as it was writes nothing — so a large
// cluster's agents do not become a stream of writes. lastTransitionTime moves only when a
// condition's status does, as metav1.Condition asks.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Node } from '@kubernetes/client-node';

import { describeApiError, httpStatus } from '../api-errors.js';
import { GROUP, VERSION } from './informers.js';

export interface LinkCondition {
  link: string;
  interfaceName: string;
  ok: boolean;
  reason: string;
  message: string;
  observedGeneration: number;
}

interface Condition {
  type: 'Ready';
  status: 'True' | 'False';
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}

interface LinkStatus {
  name: string;
  interfaceName: string;
  conditions: Condition[];
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const PLURAL = 'nodenetworkstatuses';

export class NodeStatusWriter {
  private readonly custom: CustomObjectsApi;
  private last: string | null = null;
  private transitions = new Map<string, { status: string; at: string }>();
  private exists = false;

  constructor(
    kubeConfig: KubeConfig,
    private readonly nodeName: string,
    private readonly log: { warn(fields: object, message: string): void },
  ) {
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** Writes the conditions if they differ from what was last written; returns whether it wrote. */
  async write(conditions: readonly LinkCondition[], node: V1Node | undefined): Promise<boolean> {
    const now = new Date().toISOString();
    const links: LinkStatus[] = conditions.map((c) => {
      const status = c.ok ? 'True' : 'False';
      const before = this.transitions.get(c.link);
      const at = before && before.status === status ? before.at : now;
      this.transitions.set(c.link, { status, at });
      return {
        name: c.link,
        interfaceName: c.interfaceName,
        conditions: [{ type: 'Ready', status, reason: c.reason, message: c.message, observedGeneration: c.observedGeneration, lastTransitionTime: at }],
      };
    });
    for (const name of [...this.transitions.keys()]) if (!conditions.some((c) => c.link === name)) this.transitions.delete(name);
    const ready = conditions.filter((c) => c.ok).length;
    const status = { links, summary: `${ready}/${conditions.length} ready` };
    const text = JSON.stringify(status);
    if (text === this.last) return false;
    if (!this.exists) await this.ensureObject(node);
    try {
      // A merge patch replaces the whole links list: this agent is its only writer.
      await this.custom.patchClusterCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: PLURAL, name: this.nodeName, body: { status: { ...status, observedAt: now } } },
        mergePatch,
      );
    } catch (error) {
      if (httpStatus(error) === 404) this.exists = false;
      throw error;
    }
    this.last = text;
    return true;
  }

  private async ensureObject(node: V1Node | undefined): Promise<void> {
    const uid = node?.metadata?.uid;
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'NodeNetworkStatus',
      metadata: {
        name: this.nodeName,
        labels: { 'app.kubernetes.io/managed-by': 'nodenet' },
        // Without the Node's uid there is no owner to name; the object then outlives a deleted Node
        // until the agent of a node by that name comes back.
        ...(uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.nodeName, uid }] } : {}),
      },
    };
    try {
      await this.custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, body });
    } catch (error) {
      if (httpStatus(error) !== 409) {
        this.log.warn({ node: this.nodeName, error: describeApiError(error) }, 'cannot create the NodeNetworkStatus object');
        throw error;
      }
    }
    this.exists = true;
  }
}
