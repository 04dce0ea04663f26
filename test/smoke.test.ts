import { test } from 'tap'
import { toSeconds } from '../lib/duration.js'
test('durations', async (t) => {
  t.equal(toSeconds('30m'), 1800)
})
