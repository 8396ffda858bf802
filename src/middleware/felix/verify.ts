import type { FelixBundle, FelixComponent, FelixOperationReport } from './client.js';

/**
 * What counts as a bundle running in the framework (docs/bundles.md, "Verification"): ACTIVE at
 * the expected version with every DS component it declares active (a delayed component may wait
 * satisfied until first use). A bundle can be ACTIVE while its component failed to activate:
 * that is not running.
 */

/** OSGi versions as numbers and qualifier: `1.1` is `1.1.0`. */
export function parseOsgiVersion(v: string): [number, number, number, string] {
  const [major = '0', minor = '0', micro = '0', ...rest] = v.trim().split('.');
  return [Number(major), Number(minor), Number(micro), rest.join('.')];
}

export function compareOsgiVersions(a: string, b: string): number {
  const x = parseOsgiVersion(a);
  const y = parseOsgiVersion(b);
  for (let i = 0; i < 3; i++) {
    const d = (x[i] as number) - (y[i] as number);
    if (d !== 0) return Math.sign(d);
  }
  return x[3] < y[3] ? -1 : x[3] > y[3] ? 1 : 0;
}

export const sameOsgiVersion = (a: string, b: string) => compareOsgiVersions(a, b) === 0;

/** The first lines of a Java stack trace: the exception and where it was thrown. */
function firstLines(text: string, lines = 2): string {
  return text.split('\n').slice(0, lines).join(' ').replace(/\s+/g, ' ').trim();
}

function componentProblem(c: FelixComponent): string | undefined {
  if (c.state === 'ACTIVE') return undefined;
  if (c.state === 'SATISFIED' && !c.immediate) return undefined;
  if (c.state === 'FAILED_ACTIVATION') {
    return `component ${c.name} failed to activate: ${firstLines(c.failure ?? 'no failure text')}`;
  }
  if (c.state === 'UNSATISFIED_REFERENCE') {
    return `component ${c.name} is not satisfied: no service for ${(c.unsatisfiedReferences ?? []).join(', ') || 'a reference'}`;
  }
  return `component ${c.name} is ${c.state}`;
}

/** Why the framework's answer does not show the bundle running, or [] when it does. */
export function bundleProblems(bundle: FelixBundle | undefined, version: string): string[] {
  if (!bundle) return ['it is not installed in the framework'];
  const problems: string[] = [];
  if (!sameOsgiVersion(bundle.version, version)) {
    problems.push(`the framework runs version ${bundle.version}, not ${version}`);
  }
  if (bundle.state !== 'ACTIVE') problems.push(`it is ${bundle.state}, not ACTIVE`);
  for (const c of bundle.components) {
    const p = componentProblem(c);
    if (p) problems.push(p);
  }
  return problems;
}

/** The package a resolution error names, e.g. `com.example.nowhere`. */
export function missingPackages(error: string): string[] {
  const found = new Set<string>();
  for (const m of error.matchAll(/osgi\.wiring\.package=([^)\s]+)\)/g)) if (m[1]) found.add(m[1]);
  return [...found];
}

/** Everything wrong with an install or update the framework reported, or [] when it is good. */
export function reportProblems(report: FelixOperationReport, version: string): string[] {
  const problems: string[] = [];
  if (report.error) {
    const missing = missingPackages(report.error);
    problems.push(
      missing.length > 0
        ? `it does not resolve: it imports ${missing.join(', ')}, which no bundle in the framework exports (${firstLines(report.error, 1).slice(0, 300)})`
        : `the framework could not start it: ${firstLines(report.error, 1).slice(0, 500)}`,
    );
  }
  problems.push(
    ...bundleProblems(report.bundle, version).filter((p) => !report.error || !/not ACTIVE/.test(p)),
  );
  if (report.lostActive.length > 0) {
    problems.push(
      `bundles that were ACTIVE before are not now: ${report.lostActive
        .map((b) => `${b.symbolicName ?? b.id} ${b.version} (${b.state})`)
        .join(', ')}`,
    );
  }
  return problems;
}

/** The running bundle of this symbolic name (the framework holds one revision per name here). */
export function findBundle(bundles: FelixBundle[], symbolicName: string): FelixBundle | undefined {
  return bundles.find((b) => b.symbolicName === symbolicName && b.id !== 0);
}
