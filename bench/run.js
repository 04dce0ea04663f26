// `npm run bench` (after `npm run build`): each variant of bench/variants.js as its own Fastify process
// (bench/server.js), loaded by autocannon from this process, variants interleaved in rounds.
//
//   node bench/run.js [--quick] [--rounds 5] [--duration 2] [--warmup 1] [--connections 50]
//                     [--only bare,plugin] [--json results.json] [--no-pin] [--tokens 12000]
//                     [--sessions 20000] [--cache-size 32768]
//
// --tokens: the fresh tokens of variant 10 per round; --sessions: the pool of variant 12 (signed once, sent
// round-robin, one full lap of warm-up before the first round); --cache-size: the plugin's cacheSize in every
// plugin variant (default: the plugin's default).
//
// Per variant and round: req/s (autocannon requests.average), p99 latency, the server's RSS after the run and
// its CPU time per request (process.cpuUsage() over the measured window / requests it served). Reported:
// medians over rounds, and the ratio to bare Fastify measured next to it (median of the per-run ratios).
import { execFileSync, fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { load, mintTokens } from './load.js'
import { commandCalls, hasRedisServer, startRedis } from './redis.js'
import { defaultSessions, labelOf, redisVariants, variants as allVariants } from './variants.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '50' },
    tokens: { type: 'string' },
    sessions: { type: 'string' },
    'cache-size': { type: 'string' },
    only: { type: 'string' },
    json: { type: 'string' },
    'no-pin': { type: 'boolean', default: false }
  }
})

// Many short runs rather than few long ones: on a shared VM the speed of a core swings by up to 2× within seconds,
// and a median of five ratios, each to a bare run a few seconds away, shrugs that off far better than long runs do.
const rounds = Number(args.rounds ?? (args.quick ? 1 : 5))
const duration = Number(args.duration ?? (args.quick ? 1 : 2))
const warmup = Number(args.warmup ?? (args.quick ? 0.2 : 1))
const connections = Number(args.connections)
// 10: enough distinct tokens per round that (nearly) no token comes twice within a run; fresh ones every round.
const distinctTokens = Number(args.tokens ?? Math.max(5000, Math.ceil(duration * 6000)))
const sessions = Number(args.sessions ?? defaultSessions)
// The servers are forked with this environment: bench/server.js reads it.
if (args['cache-size'] !== undefined) process.env.BENCH_CACHE_SIZE = args['cache-size']
let variants = (args.only ? allVariants.filter(([id]) => args.only.split(',').includes(id)) : allVariants)
  .map(([id, label]) => [id, labelOf(label, sessions)])
if (variants[0]?.[0] !== 'bare') throw new Error('--only must include bare (the ratios are to bare), first')
// The Redis-store variants need a redis-server (apt-get install -y redis-server): without one, they are left out.
const withRedis = variants.some(([id]) => redisVariants.includes(id))
if (withRedis && !hasRedisServer()) {
  console.error('bench: no redis-server, so variants 11 and 11b are left out (apt-get install -y redis-server)')
  variants = variants.filter(([id]) => !redisVariants.includes(id))
}

const serverPath = fileURLToPath(new URL('./server.js', import.meta.url))

// With two cores or more, the servers run on the last core and autocannon on the first, so that neither is moved
// around by the scheduler nor shares its core with the other (Linux taskset; skipped where it is missing).
const pinCores = !args['no-pin'] && cpus().length >= 2 && (() => {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()
const pin = (pid, core) => { if (pinCores) execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' }) }
pin(process.pid, 0)

const t0 = Date.now()
const log = (line) => console.error(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}`)

/** A variant's server process, and request/response over its IPC channel. */
class Server {
  constructor (id) {
    this.id = id
    this.pending = new Map()
    this.nextId = 0
    this.child = fork(serverPath, [id], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] })
    pin(this.child.pid, cpus().length - 1)
    this.exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.once('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`server ${id} exited (${code ?? signal})`))
      this.pending.clear()
    })
    this.listening = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`server ${id} exited (${code})`)))
      this.child.on('message', (message) => {
        if (message.type === 'listening') {
          this.port = message.port
          resolve()
          return
        }
        const waiter = this.pending.get(message.id)
        if (waiter === undefined) return
        this.pending.delete(message.id)
        if (message.type === 'error') waiter.reject(new Error(`server ${id}: ${message.message}`))
        else waiter.resolve(message)
      })
    })
    this.listening.catch(() => {})
  }

  request (message, timeout = 60_000) {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`server ${this.id}: no answer to ${message.type}`))
      }, timeout)
      this.pending.set(id, {
        resolve: (value) => { clearTimeout(timer); resolve(value) },
        reject: (error) => { clearTimeout(timer); reject(error) }
      })
      this.child.send({ ...message, id })
    })
  }

  async close () {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.send({ type: 'exit' })
    const timer = setTimeout(() => this.child.kill(), 5000)
    await this.exited
    clearTimeout(timer)
  }
}

const servers = []
function killAll () {
  for (const server of servers) {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill()
  }
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

const median = (values) => {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
const mb = (bytes) => bytes / 1024 / 1024

function machine () {
  let model = cpus()[0]?.model ?? 'unknown CPU'
  try {
    model = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? model
  } catch {}
  const fastifyVersion = JSON.parse(readFileSync(new URL('../node_modules/fastify/package.json', import.meta.url), 'utf8')).version
  return `${model}, ${cpus().length} cores, Node ${process.version}, Fastify ${fastifyVersion}`
}

async function main () {
  const machineLine = machine()
  const loadAtStart = loadavg()
  log(`bench: ${variants.length} variants × ${rounds} round(s), ${warmup} s warm-up (then ${warmup / 4} s) + ${duration} s measured, ${connections} connections` +
    (pinCores ? `, servers on core ${cpus().length - 1} and autocannon on core 0` : ''))
  if (variants.some(([id]) => redisVariants.includes(id))) {
    const redis = await startRedis()
    process.env.BENCH_REDIS_PORT = String(redis.port)
    process.once('exit', () => redis.stop())
  }
  for (const [id] of variants) servers.push(new Server(id))
  await Promise.all(servers.map((server) => server.listening))
  log('servers listening')
  // 12: the signed-in users, the same every round.
  const sessionTokens = variants.some(([id]) => id === 'plugin-sessions') ? await mintTokens(sessions, 'session') : undefined
  if (sessionTokens !== undefined) log(`${sessions} sessions signed`)

  // Every variant answers as designed before any load.
  for (const server of servers) {
    const { client } = await server.request({ type: 'prepare' })
    if (client.distinct) client.cookies = await mintTokens(1, 'check')
    if (client.sessions) client.cookies = sessionTokens
    const cookie = client.cookie ?? client.cookies?.[0]
    const response = await fetch(`http://127.0.0.1:${server.port}${client.path}`, { headers: cookie ? { cookie } : {} })
    const text = await response.text()
    if (response.status !== client.expect) throw new Error(`${server.id}: expected ${client.expect}, got ${response.status} ${text}`)
    if (client.expect === 200 && text !== '{"hello":"world"}') throw new Error(`${server.id}: unexpected body ${text}`)
  }

  const runs = new Map(variants.map(([id]) => [id, []]))
  const warnings = []
  // Interleaved in rounds, the order reversed every other round, with bare Fastify measured before every pair of
  // runs (and last), so that every run has a bare run next to it on one side and at most one run away on the other:
  // each run's ratio is to the mean of the bare runs just before and just after it, which cancels the drift of a
  // shared machine's speed.
  const [bare, ...others] = servers
  const sequence = []
  for (let round = 0; round < rounds; round++) {
    for (const server of round % 2 === 0 ? others : [...others].reverse()) {
      if (sequence.filter((run) => run.server !== bare).length % 2 === 0) sequence.push({ server: bare, round })
      sequence.push({ server, round })
    }
  }
  sequence.push({ server: bare, round: rounds - 1 })
  for (const [index, { server, round }] of sequence.entries()) {
    const { client } = await server.request({ type: 'prepare' })
    let warmupClient = client
    if (client.distinct) {
      client.cookies = await mintTokens(distinctTokens, `r${round}`)
      warmupClient = { ...client, cookies: await mintTokens(Math.max(2000, Math.ceil(warmup * 10000)), `w${round}`) }
    }
    if (client.sessions) client.cookies = sessionTokens
    // The first round warms the JIT up; later ones only need the connections and caches warm again.
    const warming = round === 0 ? warmup : warmup / 4
    if (warming > 0) await load(server.port, warmupClient, warming, connections, { warmup: true })
    // 12: every session has been seen once before it is measured, as on an instance that has been up a while.
    if (client.sessions && round === 0 && !args.quick) await load(server.port, client, 0, connections, { warmup: true, amount: sessions })
    // The Redis variants: every command Redis runs over the measured window (the store's, and a replica's reads).
    const redisPort = redisVariants.includes(server.id) ? Number(process.env.BENCH_REDIS_PORT) : undefined
    const callsBefore = redisPort === undefined ? undefined : await commandCalls(redisPort)
    await server.request({ type: 'start' })
    const { result, counts, clientCpuUs } = await load(server.port, client, duration, connections)
    const stats = await server.request({ type: 'stop' })
    const redisCalls = redisPort === undefined ? undefined : await commandCalls(redisPort) - callsBefore
    const expected = client.expect === 200 ? result['2xx'] : (result.statusCodeStats[client.expect]?.count ?? 0)
    const responses = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx']
    const unexpected = responses - expected + result.errors + result.timeouts
    if (unexpected > 0) warnings.push(`${server.id} round ${round + 1}: ${unexpected} of ${responses} responses not ${client.expect} (errors ${result.errors}, timeouts ${result.timeouts}, status ${JSON.stringify(result.statusCodeStats)})`)
    const run = {
      round,
      index,
      rps: result.requests.average || result.requests.total / duration,
      p99: result.latency.p99,
      responses,
      unexpected,
      serverRequests: stats.requests,
      cpuUsPerRequest: (stats.userUs + stats.systemUs) / Math.max(1, stats.requests),
      clientCpuUsPerRequest: clientCpuUs / Math.max(1, responses),
      rss: stats.rss,
      heapUsed: stats.heapUsed,
      heapAfterGc: stats.heapAfterGc,
      setCookieShare: counts.setCookie / Math.max(1, responses),
      jarUpdates: counts.jarUpdates,
      jarCleared: counts.jarCleared,
      redisPerRequest: redisCalls === undefined ? undefined : redisCalls / Math.max(1, stats.requests)
    }
    runs.get(server.id).push(run)
    log(`round ${round + 1}/${rounds} ${server.id.padEnd(17)} ${run.rps.toFixed(0).padStart(6)} req/s  p99 ${run.p99} ms  ` +
      `${run.cpuUsPerRequest.toFixed(1)} µs/req  RSS ${mb(run.rss).toFixed(1)} MB  Set-Cookie ${(100 * run.setCookieShare).toFixed(2)} %`)
  }

  await Promise.all(servers.map((server) => server.close()))

  const bareRuns = runs.get('bare')
  /** The mean of `field` over the bare runs just before and just after `run` in time (itself, for a bare run). */
  const bareAround = (run, field) => {
    if (run.index === undefined || bareRuns.includes(run)) return run[field]
    const before = bareRuns.findLast((bare) => bare.index < run.index)
    const after = bareRuns.find((bare) => bare.index > run.index)
    const around = [before, after].filter(Boolean)
    return around.reduce((sum, bare) => sum + bare[field], 0) / around.length
  }
  const summary = variants.map(([id, label]) => {
    const list = runs.get(id)
    const ratios = list.map((run) => run.rps / bareAround(run, 'rps'))
    const cpuRatios = list.map((run) => bareAround(run, 'cpuUsPerRequest') / run.cpuUsPerRequest)
    return {
      id,
      label,
      rps: median(list.map((run) => run.rps)),
      ratio: median(ratios),
      cpuRatio: median(cpuRatios),
      p99: median(list.map((run) => run.p99)),
      cpu: median(list.map((run) => run.cpuUsPerRequest)),
      clientCpu: median(list.map((run) => run.clientCpuUsPerRequest)),
      rss: list.at(-1).rss,
      rssGrowth: list.length > 1 ? list.at(-1).rss - list[0].rss : NaN,
      heapAfterGc: list.at(-1).heapAfterGc,
      heapGrowth: list.length > 1 ? list.at(-1).heapAfterGc - list[0].heapAfterGc : NaN,
      setCookieShare: median(list.map((run) => run.setCookieShare)),
      redisPerRequest: list[0].redisPerRequest === undefined ? undefined : median(list.map((run) => run.redisPerRequest)),
      unexpected: list.reduce((sum, run) => sum + run.unexpected, 0),
      responses: list.reduce((sum, run) => sum + run.responses, 0),
      runs: list
    }
  })
  const byId = Object.fromEntries(summary.map((row) => [row.id, row]))

  const fmt = (value, digits = 0) => Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
  const signed = (value) => Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${value.toFixed(1)}` : 'n/a'
  const lines = []
  const loads = (values) => values.map((value) => value.toFixed(1)).join(' ')
  lines.push(`Machine: ${machineLine}; load average ${loads(loadAtStart)} at start, ${loads(loadavg())} at end (other work on the machine)`)
  lines.push(`Method: ${rounds} round(s) of the ${variants.length} variants (bare before every pair of runs), ${warmup} s warm-up (then ${warmup / 4} s) + ` +
    `${duration} s measured each, ${connections} connections, the order reversed every other round, one server process per variant, ` +
    `autocannon in the parent${pinCores ? ` (servers pinned to core ${cpus().length - 1}, autocannon to core 0)` : ''}; medians over rounds; ` +
    'ratio = median over rounds of each run\'s ratio to the mean of the bare runs just before and after it.')
  lines.push('')
  lines.push('| variant | median req/s | ratio to bare | p99 ms | CPU µs/req | RSS MB (after) | RSS growth across rounds MB |')
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const row of summary) {
    lines.push(`| ${row.label} | ${fmt(row.rps)} | ${fmt(row.ratio, 2)} | ${fmt(row.p99)} | ${fmt(row.cpu, 1)} | ${fmt(mb(row.rss), 1)} | ${signed(mb(row.rssGrowth))} |`)
  }
  lines.push('')
  lines.push('Details: CPU ratio = bare CPU µs/req ÷ variant CPU µs/req (steadier than req/s on a shared machine); ' +
    'Set-Cookie = share of responses that set a cookie; heap after GC = the server\'s heap once collected after the last run ' +
    '(what it retains), and its growth from the first round; client CPU = autocannon µs per response.')
  lines.push('')
  lines.push('| variant | CPU ratio to bare | Set-Cookie % | responses not as expected | heap after GC MB | heap growth MB | client CPU µs/req |')
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const row of summary) {
    lines.push(`| ${row.label} | ${fmt(row.cpuRatio, 2)} | ${fmt(100 * row.setCookieShare, 2)} | ${row.unexpected} of ${row.responses} | ` +
      `${fmt(mb(row.heapAfterGc), 1)} | ${signed(mb(row.heapGrowth))} | ${fmt(row.clientCpu, 1)} |`)
  }

  const withCommands = summary.filter((row) => row.redisPerRequest !== undefined)
  if (withCommands.length > 0) {
    lines.push('')
    lines.push('| variant | Redis commands per request |')
    lines.push('| --- | ---: |')
    for (const row of withCommands) lines.push(`| ${row.label} | ${fmt(row.redisPerRequest, 3)} |`)
  }

  const targets = []
  if (byId['bare-control']) {
    targets.push(`- Control: bare Fastify again measured ${fmt(byId['bare-control'].ratio, 2)}× bare (by CPU ${fmt(byId['bare-control'].cpuRatio, 2)}×): ` +
      'the distance from 1.00 is the noise of this run.')
  }
  const target = (name, measured, pass, cpuNote) => targets.push(`- ${pass === undefined ? '?' : pass ? '✅' : '❌'} ${name}: ${measured}${cpuNote ? ` (by CPU: ${cpuNote})` : ''}`)
  const row = (id) => byId[id]
  if (row('plugin')) {
    target('(5) plugin ≥ 0.85× bare (stretch 0.90×)', `${fmt(row('plugin').ratio, 2)}×`, row('plugin').ratio >= 0.85, `${fmt(row('plugin').cpuRatio, 2)}×`)
  }
  if (row('plugin') && row('plugin-sliding')) {
    const relative = row('plugin-sliding').ratio / row('plugin').ratio
    target('(6) sliding within 5 % of (5)', `${fmt(100 * (relative - 1), 1)} %`, relative >= 0.95, `${fmt(100 * (row('plugin-sliding').cpuRatio / row('plugin').cpuRatio - 1), 1)} %`)
  }
  if (row('plugin-renew-all') && row('naive-sliding')) {
    target('(7) renewAfter 0 ≥ 1.5× naive sliding (4b)', `${fmt(row('plugin-renew-all').ratio / row('naive-sliding').ratio, 2)}×`,
      row('plugin-renew-all').ratio / row('naive-sliding').ratio >= 1.5, `${fmt(row('naive-sliding').cpu / row('plugin-renew-all').cpu, 2)}×`)
  }
  if (row('plugin') && row('plugin-encrypted')) {
    const relative = row('plugin-encrypted').ratio / row('plugin').ratio
    target('(13) encrypted within 10 % of (5)', `${fmt(100 * (relative - 1), 1)} %`, relative >= 0.90,
      `${fmt(100 * (row('plugin-encrypted').cpuRatio / row('plugin').cpuRatio - 1), 1)} %`)
  }
  if (row('plugin-anonymous')) {
    target('(8) no cookie ≥ 0.97× bare', `${fmt(row('plugin-anonymous').ratio, 2)}×`, row('plugin-anonymous').ratio >= 0.97, `${fmt(row('plugin-anonymous').cpuRatio, 2)}×`)
  }
  if (row('plugin-garbage')) {
    target('(9) garbage ≥ 0.60× bare', `${fmt(row('plugin-garbage').ratio, 2)}×`, row('plugin-garbage').ratio >= 0.60, `${fmt(row('plugin-garbage').cpuRatio, 2)}×`)
  }
  if (row('plugin-sessions')) {
    const peers = ['jwt-cookie', 'secure-session'].filter((id) => row(id))
    const ahead = peers.every((id) => row('plugin-sessions').ratio > row(id).ratio)
    target(`(12) ${sessions} sessions round-robin ≥ 0.60× bare${peers.length > 0 ? ', ahead of (2) and (3)' : ''}`,
      `${fmt(row('plugin-sessions').ratio, 2)}×${peers.map((id) => `, ${id} ${fmt(row(id).ratio, 2)}×`).join('')}`,
      row('plugin-sessions').ratio >= 0.60 && ahead, `${fmt(row('plugin-sessions').cpuRatio, 2)}×`)
  }
  if (row('plugin') && row('plugin-redis-replica')) {
    const relative = row('plugin-redis-replica').ratio / row('plugin').ratio
    const commands = row('plugin-redis-replica').redisPerRequest
    target('(11b) Redis store with replica within 5 % of (5), 0 Redis commands per request', `${fmt(100 * (relative - 1), 1)} %, ${fmt(commands, 3)} commands per request`,
      relative >= 0.95 && commands < 0.01, `${fmt(100 * (row('plugin-redis-replica').cpuRatio / row('plugin').cpuRatio - 1), 1)} %`)
  }
  const number = { plugin: 5, 'plugin-distinct': 10, 'plugin-sessions': 12 }
  for (const id of ['plugin', 'plugin-distinct', 'plugin-sessions']) {
    if (!row(id)) continue
    // Against the control (bare Fastify loaded as often as the variant) when there is one: bare itself serves three
    // times as many requests in a run, and its young generation grows with them.
    const reference = row('bare-control') ?? row('bare')
    const delta = mb(row(id).rss - reference.rss)
    target(`RSS of (${number[id]}) within 10 MB of bare Fastify's${reference.id === 'bare-control' ? ' (the control row)' : ''}`,
      `${signed(delta)} MB`, Math.abs(delta) <= 10)
    // Flat: RSS (which also moves with throughput, as the young generation grows) and the heap retained after a GC.
    const growth = mb(row(id).rssGrowth)
    const heapGrowth = mb(row(id).heapGrowth)
    target(`RSS of (${number[id]}) flat across rounds (RSS growth ≤ 5 MB, retained heap growth ≤ 2 MB)`,
      `RSS ${signed(growth)} MB, heap ${signed(heapGrowth)} MB (bare: RSS ${signed(mb(row('bare').rssGrowth))} MB, heap ${signed(mb(row('bare').heapGrowth))} MB)`,
      Number.isFinite(growth) ? growth <= 5 && heapGrowth <= 2 : undefined)
  }
  lines.push('')
  lines.push('Targets, on median ratios to bare:')
  lines.push(...targets)
  if (warnings.length > 0) {
    lines.push('')
    lines.push('Warnings:')
    lines.push(...warnings.map((warning) => `- ${warning}`))
  }
  lines.push('')
  lines.push(`Total time ${((Date.now() - t0) / 1000).toFixed(0)} s.`)
  console.log(lines.join('\n'))

  if (args.json) writeFileSync(args.json, JSON.stringify({ machine: machineLine, rounds, duration, warmup, connections, summary }, null, 2) + '\n')
  // A benchmark that measured errors instead of the intended responses is wrong: fail (more than 1 % of a variant).
  const broken = summary.filter((row) => row.unexpected > row.responses * 0.01)
  if (broken.length > 0) {
    console.error(`bench: unexpected responses in ${broken.map((row) => row.id).join(', ')}`)
    process.exitCode = 1
  }
}

main().catch((error) => {
  console.error(error)
  killAll()
  process.exitCode = 1
})
