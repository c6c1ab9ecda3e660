// What `import { describe, it, expect, … } from 'vitest'` gives a test file run by
// scripts/runner/run.mjs: vitest's own runner (@vitest/runner) and matchers (@vitest/expect on
// chai), without vite. Enough for this project's tests (no `vi`, no snapshots).
import * as chai from 'chai';
import { getCurrentTest } from '@vitest/runner';
import { ASYMMETRIC_MATCHERS_OBJECT, ChaiStyleAssertions, GLOBAL_EXPECT, JestAsymmetricMatchers, JestChaiExpect, JestExtend, getState, setState } from '@vitest/expect';

export { afterAll, afterEach, beforeAll, beforeEach, describe, it, onTestFailed, onTestFinished, suite, test } from '@vitest/runner';

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(ChaiStyleAssertions);
chai.use(JestAsymmetricMatchers);

/** vitest's createExpect, less what this project does not use (poll, soft, snapshots). */
function createExpect() {
  const expect = (value, message) => {
    const { assertionCalls } = getState(expect);
    setState({ assertionCalls: assertionCalls + 1 }, expect);
    const assertion = chai.expect(value, message);
    const current = getCurrentTest();
    return current ? assertion.withTest(current) : assertion;
  };
  Object.assign(expect, chai.expect);
  Object.assign(expect, globalThis[ASYMMETRIC_MATCHERS_OBJECT]);
  expect.getState = () => getState(expect);
  expect.setState = (state) => setState(state, expect);
  setState({ assertionCalls: 0, isExpectingAssertions: false, isExpectingAssertionsError: null, expectedAssertionsNumber: null, expectedAssertionsNumberErrorGen: null, currentTestName: '' }, expect);
  expect.assert = chai.assert;
  expect.extend = (matchers) => chai.expect.extend(expect, matchers);
  expect.unreachable = (message) => chai.assert.fail(`expected${message ? ` "${message}" ` : ' '}not to be reached`);
  return expect;
}

export const expect = createExpect();
globalThis[GLOBAL_EXPECT] = expect;
