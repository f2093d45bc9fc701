// Traffic shaping by pod annotation, the pure part: the annotation grammar and one pod's desired
// qdiscs. No kernel calls, no Kubernetes client; the controller feeds it pods and acts on plans.
export type * from './types.js';
export type { AnnotationError, Parsed } from './errors.js';
export { ANNOTATIONS, SHAPING_LABEL, SHAPING_LABEL_VALUE, desiredShaping } from './desired.js';
export { DISTRIBUTIONS, FORMS as NETEM_FORMS, MAX_DELAY_NS, MAX_JITTER_NS, MAX_RATE_BITS, NETEM_KEYWORDS, parseNetem } from './netem-grammar.js';
export {
  BANDWIDTH_LATENCY_NS,
  MAX_BANDWIDTH_BITS,
  MIN_BANDWIDTH_BITS,
  MIN_BURST_BYTES,
  QUANTITY_FORM,
  bandwidthTbf,
  parseBandwidth,
  quantityValue,
} from './bandwidth.js';
export { DEFAULT_INTERFACE, INTERFACE_FORM, MAX_INTERFACE_BYTES, parseInterfaceName } from './interface-name.js';
export { EXPIRY_FORM, expiryTime, parseExpiry, parseGoDuration, parseRfc3339, type Expiry } from './expiry.js';
