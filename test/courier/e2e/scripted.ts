/**
 * The conformance cases' scripted filter (test/e2e/runner/scripted-filter.ts) under the name the
 * cases give it, for the daemon on real Courier: its chain finds `filter: scripted` in this directory
 * through `filterPath`.
 */
export { default } from '../../e2e/runner/scripted-filter.js';
