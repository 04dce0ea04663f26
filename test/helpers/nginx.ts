// A real nginx in front of apps on 127.0.0.1, as a shared cache (a CDN, a caching proxy), a plain reverse proxy or
// a load balancer: started on a free port from a temporary directory of its own (no system paths), stopped by its pid in
// teardown.
//
// The shared cache's configuration is an aggressive one, on purpose: the cache key has no cookie in it, and
// Set-Cookie does not stop nginx from caching a response (`proxy_ignore_headers Set-Cookie`), so only Cache-Control
// decides.
// A response with a session cookie that this cache stores is handed, cookie and all, to the next user. A stale
// copy is revalidated with the ETag it has (`proxy_cache_revalidate`): how an app's 304 reaches a shared cache.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { findBinary } from './binaries.js'
import { freePort } from './redis.js'

/** The nginx binary: `$NGINX`, else the first on PATH (or in /usr/sbin, /usr/bin). */
export const nginxPath: string | undefined = findBinary('nginx', 'NGINX')

export interface Nginx {
  /** `http://127.0.0.1:<port>`: where clients send their requests. */
  readonly url: string
  readonly port: number
  /** The pid of nginx's master process. */
  readonly pid: number
  /** nginx's error log so far (for failure messages). */
  errorLog: () => string
}

/** nginx as a shared cache. */
export type SharedCache = Nginx

export interface SharedCacheOptions {
  /** The port of the app on 127.0.0.1. */
  upstream: number
}

export interface ReverseProxyOptions {
  /** The port of the app on 127.0.0.1. */
  upstream: number
  /** Directives for the `http` block (buffer sizes, say); nginx's defaults without. */
  directives?: string
}

const cacheLocation = (upstream: number): string => `
      proxy_pass http://127.0.0.1:${upstream};
      proxy_cache shared;
      proxy_cache_key $scheme$host$request_uri;
      proxy_ignore_headers Set-Cookie;
      proxy_cache_revalidate on;
      add_header X-Cache-Status $upstream_cache_status always;`

function configuration (dir: string, port: number, location: string, directives = ''): string {
  // As root, nginx would run its workers as nobody, who cannot write to this directory: they stay root here.
  const user = process.getuid?.() === 0 ? 'user root;' : ''
  return `${user}
worker_processes 1;
error_log ${dir}/error.log info;
pid ${dir}/nginx.pid;
lock_file ${dir}/nginx.lock;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  proxy_cache_path ${dir}/cache keys_zone=shared:1m;
  ${directives}
  server {
    listen 127.0.0.1:${port};
    location = /__cache-ready { return 204; }
    location / {${location}
    }
  }
}
`
}

/**
 * Starts nginx as a shared cache in front of `127.0.0.1:<upstream>`; resolves once it answers. Fails, with the
 * line that says how to install it, when nginx is not there.
 */
export async function startSharedCache (t: Test, { upstream }: SharedCacheOptions): Promise<SharedCache> {
  return await startNginx(t, cacheLocation(upstream))
}

/**
 * Starts nginx as a reverse proxy in front of `127.0.0.1:<upstream>`, with `directives` in its `http` block; resolves
 * once it answers, rejects with nginx's own message when it refuses the configuration.
 */
export async function startReverseProxy (t: Test, { upstream, directives }: ReverseProxyOptions): Promise<Nginx> {
  return await startNginx(t, `\n      proxy_pass http://127.0.0.1:${upstream};`, directives)
}

/**
 * Starts nginx as a round-robin load balancer over the instances on `upstreams` (ports on 127.0.0.1), none ever
 * marked down (`max_fails=0`): while one restarts, each request sent to it fails over to the next, as does one it
 * answers with Fastify's 503 while it closes (logins too: `non_idempotent`, as a login may be sent twice); the
 * instance gets traffic again as soon as it listens.
 */
export async function startLoadBalancer (t: Test, upstreams: readonly number[]): Promise<Nginx> {
  const servers = upstreams.map((upstream) => `    server 127.0.0.1:${upstream} max_fails=0;`).join('\n')
  const location = '\n      proxy_pass http://instances;\n      proxy_next_upstream error timeout http_502 http_503 non_idempotent;'
  return await startNginx(t, location, `upstream instances {\n${servers}\n  }`)
}

async function startNginx (t: Test, location: string, directives?: string): Promise<Nginx> {
  if (nginxPath === undefined) {
    console.log('# nginx not found: the nginx tests need it; install it with: apt-get install -y nginx')
    throw new Error('nginx not found: apt-get install -y nginx')
  }
  const dir = mkdtempSync(join(tmpdir(), 'fastify-token-cookie-nginx-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const errorLog = (): string => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8')
    } catch {
      return ''
    }
  }
  // A free port can be taken by someone else before nginx binds it: a few tries.
  let lastError: Error | undefined
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    writeFileSync(join(dir, 'nginx.conf'), configuration(dir, port, location, directives))
    try {
      const child = await launch(t, dir, port, errorLog)
      return { url: `http://127.0.0.1:${port}`, port, pid: child.pid as number, errorLog }
    } catch (error) {
      lastError = error as Error
      if (!/Address already in use/.test(lastError.message)) throw lastError
    }
  }
  throw lastError ?? new Error('nginx did not start')
}

async function launch (t: Test, dir: string, port: number, errorLog: () => string): Promise<ChildProcess> {
  const binary = nginxPath as string
  const child = spawn(binary, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<never>((resolve, reject) => child.once('exit', (code, signal) => {
    reject(new Error(`nginx exited (${code ?? signal}) before it was ready:\n${output}\n${errorLog()}`))
  }))
  exited.catch(() => {})
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', reject)
  })
  await Promise.race([spawned, exited])
  t.teardown(() => stop(child))

  const deadline = performance.now() + 10_000
  for (;;) {
    const answer = await Promise.race([
      fetch(`http://127.0.0.1:${port}/__cache-ready`).then((response) => response.status, (error: Error) => error.message),
      exited
    ])
    if (answer === 204) return child
    if (performance.now() > deadline) {
      await stop(child)
      throw new Error(`nginx on port ${port} not ready after 10 s (last: ${answer}):\n${output}\n${errorLog()}`)
    }
    await sleep(20)
  }
}

/** The pids of a process's children (nginx's workers, cache manager and loader), read from /proc. */
function childrenOf (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Stops nginx by its pid: SIGQUIT (graceful: its workers finish and exit, then the master), and SIGKILL to the
 * master and each of its children by pid if it has not exited within 5 s.
 */
async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const pid = child.pid
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const children = childrenOf(pid)
  child.kill('SIGQUIT')
  const timedOut = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)])
  if (timedOut) {
    for (const worker of [...children, ...childrenOf(pid)]) {
      try {
        process.kill(worker, 'SIGKILL')
      } catch {}
    }
    child.kill('SIGKILL')
    await exited
  }
  // The master waits for its workers before it exits; make sure none is left behind whatever happened.
  const deadline = performance.now() + 5000
  while (children.some(alive) && performance.now() < deadline) await sleep(20)
}
