// CPU profile of one variant's server under load (after `npm run build`):
//   node bench/profile.js <variant> [--duration 10] [--dir /tmp/fastify-token-cookie-profiles] [--top 25] [--sessions 20000]
//   node bench/profile.js --summarize <file.cpuprofile> [--top 25]
// Starts bench/server.js with `node --cpu-prof`, loads it with autocannon (1 s warm-up, then --duration),
// stops it with SIGTERM (it closes and exits, so the profile is written) and prints the functions with the most
// self time, with their file:line, and the self time per package.
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { load, mintTokens } from './load.js'
import { defaultSessions } from './variants.js'

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string', default: '10' },
    dir: { type: 'string', default: '/tmp/fastify-token-cookie-profiles' },
    top: { type: 'string', default: '25' },
    sessions: { type: 'string', default: String(defaultSessions) },
    summarize: { type: 'string' }
  }
})
const top = Number(args.top)
const root = fileURLToPath(new URL('..', import.meta.url))
// The requests served while profiled (warm-up included), for µs per request; unknown with --summarize.
let requests

async function profile (variant) {
  const dir = join(args.dir, `${variant}-${Date.now()}`)
  mkdirSync(dir, { recursive: true })
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, fileURLToPath(new URL('./server.js', import.meta.url)), variant], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  process.on('exit', () => child.kill())
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)))
  })
  const { port, client } = JSON.parse(first)
  if (client.distinct) client.cookies = await mintTokens(Math.ceil(Number(args.duration) * 10000), 'profile')
  // 12: the pool of sessions, one full lap of warm-up (each token seen once before the profiled window).
  const lap = client.sessions ? { amount: (client.cookies = await mintTokens(Number(args.sessions), 'profile')).length } : {}
  const { result: warm } = await load(port, client, 1, 50, { warmup: true, ...lap })
  const { result } = await load(port, client, Number(args.duration))
  console.error(`${variant}: ${Math.round(result.requests.average)} req/s, ${result.non2xx} non-2xx, under the profiler`)
  requests = warm.requests.total + result.requests.total
  child.kill('SIGTERM')
  await exited
  const file = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).map((name) => join(dir, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]
  if (file === undefined) throw new Error(`no profile written in ${dir}`)
  return { file, requests }
}

/** Which package a script belongs to: the plugin (dist/), node_modules/<package>, Node's own, or V8's pseudo-nodes. */
function owner (url, functionName) {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) return 'node:internal'
  const path = url.replace(/^file:\/\//, '')
  const modules = path.lastIndexOf('/node_modules/')
  if (modules !== -1) {
    const rest = path.slice(modules + '/node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  if (path.includes('/dist/')) return 'fastify-token-cookie (plugin)'
  if (path.includes('/bench/')) return 'bench server'
  return path
}

function short (url) {
  const path = url.replace(/^file:\/\//, '')
  const modules = path.lastIndexOf('/node_modules/')
  if (modules !== -1) return path.slice(modules + '/node_modules/'.length)
  return path.startsWith(root) ? path.slice(root.length) : path
}

const inclusiveOf = new Set(['fastify-token-cookie (plugin)', '@fastify/jwt', 'fast-jwt', '@fastify/cookie', 'cookie'])

function summarize (file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  // Only the load: from the first to the last sample taken while serving HTTP (not start-up, not shut-down).
  const serving = (id) => {
    for (; id !== undefined; id = parent.get(id)) if (byId.get(id).callFrame.url === 'node:_http_server') return true
    return false
  }
  // (A profile of something else, app.inject say, has no such sample: then all of it counts.)
  let first = profile.samples.findIndex(serving)
  let last = profile.samples.findLastIndex(serving)
  if (first === -1) [first, last] = [0, profile.samples.length - 1]
  const inWindow = (i) => i >= first && i <= last
  // Self time per node from the samples and their time deltas (µs).
  const self = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    if (!inWindow(i)) continue
    const id = profile.samples[i]
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const total = [...self.values()].reduce((sum, value) => sum + value, 0)
  const idle = [...self].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((sum, [, value]) => sum + value, 0)
  const busy = total - idle
  const functions = new Map()
  const packages = new Map()
  for (const [id, time] of self) {
    const { functionName, url, lineNumber, columnNumber } = byId.get(id).callFrame
    if (functionName === '(idle)') continue
    const key = `${functionName}\u0000${url}\u0000${lineNumber}`
    const entry = functions.get(key) ?? { name: functionName || '(anonymous)', where: url ? `${short(url)}:${lineNumber + 1}:${columnNumber + 1}` : '', time: 0 }
    entry.time += time
    functions.set(key, entry)
    const pkg = owner(url, functionName)
    packages.set(pkg, (packages.get(pkg) ?? 0) + time)
  }
  // Inclusive time of the plugin's functions and of the libraries it calls: each sample counts once for every
  // function on its stack, but not
  // through a Fastify frame (a hook that calls done() synchronously would otherwise own the rest of the request).
  const inclusive = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    if (!inWindow(i)) continue
    const seen = new Set()
    for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const { functionName, url, lineNumber } = byId.get(id).callFrame
      const pkg = owner(url, functionName)
      if (pkg === 'fastify' && id !== profile.samples[i]) break
      if (!inclusiveOf.has(pkg)) continue
      const key = `${functionName || '(anonymous)'} ${short(url)}:${lineNumber + 1}`
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
    }
  }
  const pct = (time) => `${(100 * time / busy).toFixed(1)} %`
  // µs per request, when the number of requests is known.
  const per = (time) => requests ? (time / requests).toFixed(1) : 'n/a'
  const ms = (time) => (time / 1000).toFixed(0)
  const lines = []
  lines.push(`${file}: ${ms(total)} ms under load (first to last sample serving HTTP), ${ms(busy)} ms busy (percentages of busy time)` +
    (requests ? `, ${requests} requests: ${per(busy)} µs busy per request` : ''))
  lines.push('')
  lines.push('| # | self ms | self % | function | file:line |')
  lines.push('| ---: | ---: | ---: | --- | --- |')
  ;[...functions.values()].sort((a, b) => b.time - a.time).slice(0, top).forEach((entry, i) => {
    lines.push(`| ${i + 1} | ${ms(entry.time)} | ${pct(entry.time)} | ${entry.name} | ${entry.where} |`)
  })
  lines.push('')
  lines.push('| self time by package | ms | % | µs/request |')
  lines.push('| --- | ---: | ---: | ---: |')
  for (const [pkg, time] of [...packages].sort((a, b) => b[1] - a[1])) lines.push(`| ${pkg} | ${ms(time)} | ${pct(time)} | ${per(time)} |`)
  lines.push('')
  lines.push('| the plugin\'s functions and those of @fastify/jwt, fast-jwt, @fastify/cookie, cookie: inclusive (self + callees) | ms | % | µs/request |')
  lines.push('| --- | ---: | ---: | ---: |')
  for (const [key, time] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 20)) lines.push(`| ${key} | ${ms(time)} | ${pct(time)} | ${per(time)} |`)
  return lines.join('\n')
}

const { file } = args.summarize ? { file: args.summarize } : await profile(positionals[0] ?? 'plugin')
console.log(summarize(file))
