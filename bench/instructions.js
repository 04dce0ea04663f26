// `npm run bench:instructions` (after `npm run build`; needs valgrind: apt-get install -y valgrind):
// the user-space instructions each variant's server executes per request, counted by callgrind.
//
//   node bench/instructions.js [--quick] [--only bare,plugin] [--warmup 2000] [--requests 2000] [--jobs 2] [--json out.json]
//                              [--sessions 20000] [--cache-size 4096]
//
// Time on a shared VM swings by up to 2× within seconds (see the control row of `npm run bench`); an instruction count
// does not: the same server and load give the same count to within about 1 %. So this is the measure to judge a
// change to the hot path by. It leaves out the kernel (the TCP stack, which costs every variant alike, so ratios here
// are a little wider than ratios of time), and counts the garbage collector's and the compiler's work with the rest:
// the servers run with V8's `--predictable`, which keeps them on the main thread and their scheduling independent of
// the clock (without it, the variants that allocate most swing by 20 % from run to run).
//
// Per variant: `node --predictable bench/server.js <variant>` under `valgrind --tool=callgrind`, `--warmup` requests
// from autocannon (10 connections), counters zeroed (callgrind_control -z), `--requests` more, counters dumped.
// Variant 12 warms up with one full lap of its `--sessions` tokens instead, so that every counted request carries a
// token last seen `--sessions` requests before. `--cache-size` sets the plugin's cacheSize in every plugin variant.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { load, mintTokens } from './load.js'
import { hasRedisServer, startRedis } from './redis.js'
import { defaultSessions, labelOf, redisVariants, referenceVariants, variants as allVariants } from './variants.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    warmup: { type: 'string' },
    requests: { type: 'string' },
    jobs: { type: 'string', default: '2' },
    json: { type: 'string' },
    sessions: { type: 'string' },
    'cache-size': { type: 'string' }
  }
})
const warmup = Number(args.warmup ?? (args.quick ? 1000 : 2000))
const requests = Number(args.requests ?? (args.quick ? 300 : 2000))
const connections = 10
const sessions = Number(args.sessions ?? defaultSessions)
// The servers are spawned with this environment: bench/server.js reads it.
if (args['cache-size'] !== undefined) process.env.BENCH_CACHE_SIZE = args['cache-size']
const known = [...allVariants, ...referenceVariants].map(([id, label]) => [id, labelOf(label, sessions)])
let variants = args.only ? known.filter(([id]) => args.only.split(',').includes(id)) : known
if (variants[0]?.[0] !== 'bare') throw new Error('--only must include bare (the ratios are to bare), first')
if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('bench:instructions needs valgrind: apt-get install -y valgrind')
  process.exit(2)
}
if (variants.some(([id]) => redisVariants.includes(id)) && !hasRedisServer()) {
  console.error('bench: no redis-server, so variants 11 and 11b are left out (apt-get install -y redis-server)')
  variants = variants.filter(([id]) => !redisVariants.includes(id))
}
// Under callgrind a server answers some 50 times slower: a sliding session must not expire during the count (its
// login token stays valid for 60 s after it is due for renewal, long enough for the warm-up), nor the Redis store
// time out.
process.env.BENCH_SLIDING_MAX_AGE ??= '120s'
process.env.BENCH_STORE_TIMEOUT ??= '10s'
process.env.BENCH_MAX_LAG ??= '10s'

const serverPath = fileURLToPath(new URL('./server.js', import.meta.url))
const nodeFlags = ['--predictable']
const t0 = Date.now()
const log = (line) => console.error(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}`)

/** The instructions per request of one variant. */
async function count (id) {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-token-cookie-callgrind-'))
  const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'callgrind.out')}`, process.execPath, ...nodeFlags, serverPath, id],
    { stdio: ['ignore', 'pipe', 'ignore'] })
  try {
    const first = await new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve)
      child.once('exit', (code) => reject(new Error(`${id}: the server exited (${code})`)))
    })
    const { port, client } = JSON.parse(first)
    // Variant 10: tokens signed here, fresh ones for the count (none of them seen in the warm-up).
    let warmupClient = client
    if (client.distinct) {
      warmupClient = { ...client, cookies: await mintTokens(warmup, `${id}-warmup`) }
      client.cookies = await mintTokens(requests, `${id}-count`)
    }
    // Variant 12: one lap of the pool as the warm-up (each connection sends its share once), then the count starts
    // the next lap.
    let warmupRequests = warmup
    if (client.sessions) {
      client.cookies = await mintTokens(sessions, `${id}-session`)
      warmupRequests = Math.max(warmup, sessions)
    }
    // Variant 6: every connection of the warm-up and of the count starts with the login token, due for renewal by
    // then, and renews it at once: the renewal path is compiled in the warm-up, and the count holds 10 renewals (0.5 %
    // of its requests, as in \`npm run bench\`), each with its new token verified once.
    if (client.renewalDueAt !== undefined) await new Promise((resolve) => setTimeout(resolve, Math.max(0, client.renewalDueAt - Date.now())))
    await load(port, warmupClient, 0, connections, { amount: warmupRequests })
    execFileSync('callgrind_control', ['--zero', String(child.pid)], { stdio: 'ignore' })
    const { result, counts } = await load(port, client, 0, connections, { amount: requests })
    execFileSync('callgrind_control', ['--dump', String(child.pid)], { stdio: 'ignore' })
    const expected = client.expect === 200 ? result['2xx'] : (result.statusCodeStats[client.expect]?.count ?? 0)
    if (expected !== requests) throw new Error(`${id}: ${requests - expected} of ${requests} responses not ${client.expect}`)
    if (client.jar !== undefined && counts.jarUpdates === 0) throw new Error(`${id}: no renewal in the count`)
    // The dump is part 1, callgrind.out.1 (the threads summed).
    const totals = readFileSync(join(dir, 'callgrind.out.1'), 'utf8').match(/^(?:summary|totals): (\d+)/m)
    if (totals === null) throw new Error(`${id}: no totals in the callgrind dump`)
    return { id, instructions: Number(totals[1]) / requests, renewals: client.jar === undefined ? undefined : counts.jarUpdates }
  } finally {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main () {
  log(`bench:instructions: ${variants.length} variants, ${warmup} requests of warm-up, ${requests} counted, ${args.jobs} at a time`)
  if (variants.some(([id]) => redisVariants.includes(id))) {
    const redis = await startRedis()
    process.env.BENCH_REDIS_PORT = String(redis.port)
    process.once('exit', () => redis.stop())
  }
  const results = new Map()
  const queue = [...variants]
  await Promise.all(Array.from({ length: Number(args.jobs) }, async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      try {
        const result = await count(next[0])
        results.set(next[0], result)
        log(`${next[0]}: ${Math.round(result.instructions)} instructions per request${result.renewals === undefined ? '' : `, ${result.renewals} renewals`}`)
      } catch (error) {
        // One variant that could not be counted leaves a gap in the table, not an empty table.
        log(String(error))
        process.exitCode = 1
      }
    }
  }))

  const bare = results.get('bare')
  if (bare === undefined) throw new Error('bare Fastify could not be counted: no ratios')
  const k = (value) => `${(value / 1000).toFixed(1)}k`
  const lines = []
  lines.push(`Instructions per request (user space, node --predictable under callgrind), ${requests} requests counted after ${warmup} of warm-up, ` +
    `${connections} connections; ratio = bare's count ÷ the variant's (the throughput it would have if instructions were all that cost).`)
  lines.push('')
  lines.push('| variant | instructions/request | ratio to bare | above bare |')
  lines.push('| --- | ---: | ---: | ---: |')
  for (const [id, label] of variants) {
    const row = results.get(id)
    if (row === undefined) {
      lines.push(`| ${label} | not counted | | |`)
      continue
    }
    const above = row.instructions - bare.instructions
    lines.push(`| ${label} | ${k(row.instructions)} | ${(bare.instructions / row.instructions).toFixed(2)} | ${id === 'bare' ? '' : `${above >= 0 ? '+' : '−'}${k(Math.abs(above))}`} |`)
  }
  const ratio = (id) => results.has(id) ? bare.instructions / results.get(id).instructions : undefined
  const targets = []
  const target = (name, value, pass) => { if (value !== undefined) targets.push(`- ${pass ? '✅' : '❌'} ${name}: ${value.toFixed(2)}×`) }
  target('(5) plugin ≥ 0.85× bare', ratio('plugin'), ratio('plugin') >= 0.85)
  if (results.has('plugin-sliding') && results.has('plugin')) {
    const relative = results.get('plugin').instructions / results.get('plugin-sliding').instructions
    targets.push(`- ${relative >= 0.95 ? '✅' : '❌'} (6) sliding within 5 % of (5): ${(100 * (relative - 1)).toFixed(1)} %`)
  }
  if (results.has('plugin-renew-all') && results.has('naive-sliding')) {
    const relative = results.get('naive-sliding').instructions / results.get('plugin-renew-all').instructions
    targets.push(`- ${relative >= 1.5 ? '✅' : '❌'} (7) renewAfter 0 ≥ 1.5× naive sliding (4b): ${relative.toFixed(2)}×`)
  }
  if (results.has('plugin-encrypted') && results.has('plugin')) {
    const relative = results.get('plugin').instructions / results.get('plugin-encrypted').instructions
    targets.push(`- ${relative >= 0.90 ? '✅' : '❌'} (13) encrypted within 10 % of (5): ${(100 * (relative - 1)).toFixed(1)} %`)
  }
  target('(8) no cookie ≥ 0.97× bare', ratio('plugin-anonymous'), ratio('plugin-anonymous') >= 0.97)
  target('(9) garbage ≥ 0.60× bare', ratio('plugin-garbage'), ratio('plugin-garbage') >= 0.6)
  if (targets.length > 0) lines.push('', 'Targets, on instruction ratios:', ...targets)
  lines.push('', `Total time ${((Date.now() - t0) / 1000).toFixed(0)} s.`)
  console.log(lines.join('\n'))
  if (args.json) writeFileSync(args.json, JSON.stringify({ warmup, requests, connections, results: [...results.values()] }, null, 2) + '\n')
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
