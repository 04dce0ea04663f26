// The instruction-count benchmark runs (CI checks that it counts, not its numbers).
// Not part of `npm test`: `npm run test:bench` builds, then runs test/bench/ (CI runs it once).
// Needs valgrind (`apt-get install -y valgrind`); skipped without it.
import { spawnSync } from 'node:child_process'
import { test } from 'tap'
import { runBench } from '../helpers/run-bench.js'

test('npm run bench:instructions -- --quick: bare and the plugin counted, a table printed, exit 0', async (t) => {
  if (spawnSync('valgrind', ['--version']).status !== 0) {
    t.plan(0, 'instruction counts skipped: no valgrind; apt-get install -y valgrind')
    return
  }
  const { code, stdout, stderr } = await runBench(t, 'instructions.js', ['--quick', '--only', 'bare,plugin'])
  t.equal(code, 0, `exit code 0\n${stderr}`)
  t.match(stdout, /^\| variant \| instructions\/request \| ratio to bare \| above bare \|$/m, 'the table header')
  t.match(stdout, /^\| 1\. bare Fastify \(ceiling\) \| \d+\.\dk \| 1\.00 \| {2}\|$/m, 'bare, the ratio 1.00')
  const plugin = stdout.match(/^\| 5\. plugin, valid cookie \| (\d+\.\d)k \| (\d\.\d\d) \| [+−]\d+\.\dk \|$/m)
  t.ok(plugin, 'a row for the plugin')
  // A quick run counts mostly JIT compilation, and other test files share the cores, so only a sane ratio is asked for.
  t.ok(Number(plugin?.[2]) > 0.3 && Number(plugin?.[2]) < 3, `a plausible ratio: ${plugin?.[2]}`)
  t.match(stdout, /^- [✅❌] \(5\) plugin ≥ 0\.85× bare: \d\.\d\d×$/m, 'the target line')
})
