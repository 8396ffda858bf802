/**
 * Every failure clusterguard raises carries one of these types, so that retry policies
 * (`nonRetryableErrorTypes`), the CLI and the Web UI can tell them apart.
 */
export const errorTypes = [
  /** A workflow input, update argument or request body failed its schema. Permanent. */
  'InvalidInput',
  /** A membership change would lose a majority (or a middleware quorum). Permanent. */
  'UnsafeMembershipChange',
  /** `cluster.json` exists but cannot be parsed or validated. Permanent until repaired. */
  'CorruptClusterFile',
  /** The application config file or environment is invalid. Permanent. */
  'InvalidConfig',
  /** A node agent did not pick up work within its schedule-to-start window. Transient. */
  'NodeUnreachable',
  /** A request to a node agent's HTTP API was refused (401/403). Permanent. */
  'Unauthorized',
  /** An archive is unsafe (path escape, link, bomb) or fails verification. Permanent. */
  'UnsafeArchive',
  /** A middleware binary or command named by the config is missing on the node. Permanent. */
  'MissingBinary',
  /** A middleware operation failed; retried by policy. */
  'MiddlewareFailure',
  /** An operator aborted a parked runbook (`abort`); the message states what was left. */
  'Aborted',
  /** Another runbook holds the cluster's workflow id, so this one was not started. Permanent. */
  'ClusterBusy',
  /** The appliance controller's HTTP API did not answer in time or failed. Transient. */
  'ControllerUnavailable',
  /** A node's configured webapp stop/start command failed. Retried by policy. */
  'WebappCommandFailed',
  /**
   * The node's OSGi framework refused a bundle: it does not resolve, a component failed to
   * activate, or it left other bundles unresolved. Permanent for that artifact.
   */
  'BundleRejected',
  /**
   * A runbook named only a cluster (no `master`) that clusterguard has no record of: bootstrap
   * it, or adopt it by naming its master once (docs/design.md, "The cluster record"). Permanent.
   */
  'UnknownCluster',
] as const;

export type ErrorType = (typeof errorTypes)[number];

/** Types that retrying cannot fix: activities raise them with `ApplicationFailure.nonRetryable`. */
export const nonRetryableErrorTypes: ErrorType[] = [
  'InvalidInput',
  'UnsafeMembershipChange',
  'CorruptClusterFile',
  'InvalidConfig',
  'Unauthorized',
  'UnsafeArchive',
  'MissingBinary',
  'Aborted',
  'ClusterBusy',
  'BundleRejected',
  'UnknownCluster',
];

/**
 * A plain error with a type from the union, for code outside workflows (config loading,
 * planning, adapters, the CLI). Activities throw it as it is: the activity interceptor
 * (activities/interceptor.ts) turns it into an ApplicationFailure of the same type.
 */
export class ClusterGuardError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClusterGuardError';
  }
}

function typedError<T extends ErrorType>(type: T) {
  return class extends ClusterGuardError {
    declare readonly type: T;
    constructor(message: string, options?: { cause?: unknown }) {
      super(type, message, options);
      this.name = `${type}Error`;
    }
  };
}

/** An input, argument or option failed its schema; nothing was sent. */
export class InvalidInputError extends typedError('InvalidInput') {}
/** Connection options, a config file or a key ring are invalid; nothing was sent. */
export class InvalidConfigError extends typedError('InvalidConfig') {}
/**
 * Another run holds the runbook's workflow id (a cluster's one membership or data runbook, its
 * guardian, a bundle's rollout), so this one was not started; the message names it.
 */
export class ClusterBusyError extends typedError('ClusterBusy') {}
