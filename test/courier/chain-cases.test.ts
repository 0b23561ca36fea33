/**
 * The filter API's conformance cases (test/e2e/cases/chain-*.yaml) on the offline courier profile
 * (the data and control files Courier writes, its reply semantics), checked against
 * test/courier/chain-cases.yaml. Real Courier plays the same cases in e2e-courier.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPrediction, loadCourierCases, messagesOf, predictOnCourier } from './chain-cases-runner.js';

const { cases, unpaired } = loadCourierCases();

describe('filter API conformance cases on Courier (offline courier profile)', () => {
  it('every chain case has Courier expectations, and every expectation a case', () => {
    assert.deepEqual(unpaired, []);
  });

  for (const courierCase of cases) {
    it(courierCase.kase.name, async () => {
      const reports = await predictOnCourier(courierCase, messagesOf(courierCase.kase, 'courier-offline'));
      assert.deepEqual(checkPrediction(courierCase, reports), []);
    });
  }
});
