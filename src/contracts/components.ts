/**
 * The middleware names the runbooks' inputs take, in a module of its own with no imports, so
 * that the CLI can list them in its help without loading the schemas.
 */

/** What a data runbook backs up, in the order it runs on a node (docs/design.md). */
export const dataComponents = ['cockroach', 'zookeeper', 'kafka', 'controller', 'bundles'] as const;

/** The middleware a membership runbook changes. */
export const membershipMiddleware = ['cockroach', 'zookeeper', 'kafka'] as const;
