// Helpers for the browser tests: Debian's Chromium through playwright-core, the demo app, a cross-site page.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { chromium, type Browser, type BrowserContext, type Cookie, type LaunchOptions, type Page } from 'playwright-core'

/** Debian's package (`apt-get install -y chromium`), or any Chromium named by CHROMIUM_PATH. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const hasChromium = existsSync(chromiumPath)

export const launchOptions: LaunchOptions = {
  executablePath: chromiumPath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
}

interface Teardown { teardown: (fn: () => unknown) => void }

/** Options of demo/server.js `buildDemo()`. */
export interface DemoOptions {
  idle?: number | string
  absolute?: number | string
  remember?: number | string
  reauth?: number | string
  renewAfter?: number
  secret?: string
  fastify?: FastifyServerOptions
}

type BuildDemo = (options?: DemoOptions) => Promise<FastifyInstance>

/** The demo imports 'fastify-token-cookie', which resolves to dist/: `npm test` builds it first. */
export async function loadDemo (): Promise<BuildDemo> {
  if (!existsSync(new URL('../../dist/esm/index.js', import.meta.url))) {
    throw new Error('dist/ is missing: run `npm run build` before the browser tests (npm test does)')
  }
  // A computed specifier: the demo is plain JavaScript without declarations.
  const demo = await import(new URL('../../demo/server.js', import.meta.url).href) as { buildDemo: BuildDemo }
  return demo.buildDemo
}

/** Starts the demo on 127.0.0.1 (a random port) until the test ends; `setup` may add hooks before it listens. */
export async function startDemo (t: Teardown, options: DemoOptions, setup?: (app: FastifyInstance) => void): Promise<string> {
  const buildDemo = await loadDemo()
  const app = await buildDemo(options)
  t.teardown(() => app.close())
  setup?.(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

/**
 * Runs `node demo/server.js` (what `npm start` runs after building) with `env` added to this process's
 * environment; resolves to the URL it prints and everything it printed up to then.
 */
export async function runDemo (t: Teardown, env: Record<string, string | undefined>): Promise<{ url: string, output: string }> {
  const child = spawn(process.execPath, [new URL('../../demo/server.js', import.meta.url).pathname], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    child.kill()
    await exited
  })
  let output = ''
  // The URL line comes first, the users line last; keep reading (and ignoring) after that.
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      output += String(chunk)
      if (/demo users:.*\n/.test(output)) resolve()
    })
    child.once('exit', (code) => reject(new Error(`demo/server.js exited (${code}) before printing its URL: ${output}`)))
  })
  const url = /demo: (http:\/\/\S+)/.exec(output)?.[1]
  if (url === undefined) throw new Error(`demo/server.js printed no URL: ${output}`)
  return { url, output }
}

/**
 * Serves `html` at / from `host` on a port of its own. Sites are compared by host (and scheme), not port:
 * 127.0.0.2 is another site than the demo on 127.0.0.1; 127.0.0.1 on another port is the same site,
 * another origin.
 */
export async function startOtherOrigin (t: Teardown, host: '127.0.0.1' | '127.0.0.2', html: string): Promise<string> {
  const app = Fastify({ forceCloseConnections: true })
  app.get('/', async (request, reply) => reply.type('text/html; charset=utf-8').send(html))
  t.teardown(() => app.close())
  await app.listen({ host, port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://${host}:${address.port}`
}

export async function launchBrowser (t: Teardown): Promise<Browser> {
  const browser = await chromium.launch(launchOptions)
  t.teardown(() => browser.close())
  return browser
}

/** A fresh user-data dir, removed when the test ends. */
export async function userDataDir (t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'token-cookie-chromium-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A browser with a user-data dir on disk, as a person's browser is: closing it is closing the browser. */
export async function launchProfile (dir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(dir, launchOptions)
}

export interface Hint { e: number, a: number }

/** The `token.exp` hint, parsed as a page script would (`new URLSearchParams(value)`). */
export function parseHint (value: string): Hint {
  const params = new URLSearchParams(value)
  return { e: Number(params.get('e')), a: Number(params.get('a')) }
}

export async function cookieNamed (context: BrowserContext, name: string): Promise<Cookie | undefined> {
  return (await context.cookies()).find((cookie) => cookie.name === name)
}

/** The hint as the page's script sees it in document.cookie, or null. */
export async function pageHint (page: Page): Promise<Hint | null> {
  const value = await page.evaluate(() => document.cookie.split('; ').find((cookie) => cookie.startsWith('token.exp='))?.slice('token.exp='.length))
  return value === undefined ? null : parseHint(value)
}

export const nowSeconds = (): number => Date.now() / 1000

/** Waits in real time until `epochSeconds` has passed: where a lifetime is under test, time must really pass. */
export async function sleepUntil (epochSeconds: number): Promise<void> {
  const ms = epochSeconds * 1000 - Date.now()
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms + 20))
}

/** Signs in through the page's form (the demo users are listed on the page; a chip fills them in). */
export async function signIn (page: Page, origin: string, { user = 'alice', remember = false } = {}): Promise<void> {
  await page.goto(origin)
  await page.waitForSelector('body[data-state="signed-out"]')
  await page.click(`.user-chip[data-username="${user}"]`)
  await page.setChecked('#remember', remember)
  await Promise.all([
    page.waitForResponse((response) => response.url() === `${origin}/login`),
    page.click('#login-form button[type="submit"]')
  ])
  await page.waitForSelector('body[data-state="signed-in"]')
}

export interface ApiAnswer { status: number, body: Record<string, any>, at: number }

/**
 * The first 401 the page gets from `origin`'s API, whoever asked: the test (fetchInPage) or the page's own
 * script, which asks the server once its expiry hint says the session is over.
 */
export async function firstRefusal (page: Page, origin: string, timeout: number): Promise<ApiAnswer & { path: string }> {
  const response = await page.waitForResponse((response) => response.status() === 401 && response.url().startsWith(`${origin}/api/`), { timeout })
  const at = nowSeconds()
  return { status: 401, body: await response.json(), at, path: new URL(response.url()).pathname }
}

/** Everything of `selector` that sticks out of the viewport sideways, and whether the page scrolls sideways. */
export async function overflow (page: Page, selector: string): Promise<{ scrollWidth: number, innerWidth: number, outside: string[] }> {
  return page.evaluate((selector) => {
    const outside: string[] = []
    for (const element of document.querySelectorAll(selector)) {
      const box = element.getBoundingClientRect()
      if (box.width === 0 && box.height === 0) continue
      const name = `${element.tagName.toLowerCase()}${element.id === '' ? '' : `#${element.id}`}${[...element.classList].map((c) => `.${c}`).join('')}`
      if (box.left < -0.5 || box.right > window.innerWidth + 0.5) outside.push(`${name}: ${Math.round(box.left)} to ${Math.round(box.right)}`)
      // Content cut off inside its own box (a token that does not wrap).
      if (element.scrollWidth > element.clientWidth + 1 && getComputedStyle(element).overflowX !== 'visible') outside.push(`${name}: content ${element.scrollWidth} px in ${element.clientWidth} px`)
    }
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, outside }
  }, selector)
}

/** A fetch from inside the page: the browser decides which cookies go with it. */
export async function fetchInPage (page: Page, path: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<ApiAnswer> {
  const answer = await page.evaluate(async ({ path, init }) => {
    const response = await fetch(path, init)
    const text = await response.text()
    return { status: response.status, text }
  }, { path, init })
  return { status: answer.status, body: answer.text === '' ? {} : JSON.parse(answer.text), at: nowSeconds() }
}
