// fastify-token-cookie: signed JWTs in cookies with session, persistent or sliding lifetimes.
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { createCookieWriter } from './lib/cookie.js'
import { AlreadyRegisteredError } from './lib/errors.js'
import { createRequestLife } from './lib/hooks.js'
import { resolveOptions, type ResolvedOptions } from './lib/options.js'
import { createEncryptedCodec } from './lib/encrypted-token.js'
import { admitterFor, type Verified } from './lib/policy.js'
import { kSendHookRan, kState } from './lib/request-state.js'
import { createRevocationApi, createRevocations } from './lib/revocation.js'
import { createCodec, maxTokenBytes, type CodecKey, type JwtSignerVerifier, type TokenCodec } from './lib/token.js'
import type { TokenCookieOptions } from './types/index.js'

export type * from './types/index.js'
export { memoryStore } from './lib/store.js'
export {
  OptionsError, RevocationCheckError, StoreUnavailableError, TokenCrossSiteError, TokenExpiredError, TokenInvalidError, TokenMissingError, TokenReauthError,
  TokenRevokedError, TokenTooLargeError
} from './lib/errors.js'

// @fastify/jwt under namespaces of its own (one a key), in a context of its own:
// the app's @fastify/jwt, if any, is untouched.
async function registerJwt (app: FastifyInstance, options: ResolvedOptions): Promise<CodecKey[]> {
  const keys: CodecKey[] = []
  await app.register(async function tokenCookieJwt (child) {
    for (const [index, { kid, algorithm, secret, signFrom }] of options.keys.entries()) {
      const namespace = `tokenCookie${index}`
      await child.register(fastifyJwt, {
        namespace,
        secret,
        sign: { ...options.sign, algorithm, ...(kid === undefined ? {} : { kid }) },
        verify: { ...options.verify, algorithms: [algorithm] }
      })
      const hmacSecret = typeof secret === 'string' || Buffer.isBuffer(secret) ? secret : undefined
      keys.push({ kid, algorithm, jwt: (child.jwt as unknown as Record<string, JwtSignerVerifier>)[namespace], hmacSecret, signFrom })
    }
  })
  return keys
}

/** Signed tokens through @fastify/jwt's signers (verified by the codec), or encrypted ones through jose. */
async function codecFor (app: FastifyInstance, options: ResolvedOptions): Promise<TokenCodec<Verified>> {
  const admit = admitterFor(options.lifetime)
  const { format, cacheSize, verify, sign } = options
  // A chunked token is up to `maxChunks` cookies long.
  const maxBytes = options.maxChunks * maxTokenBytes
  switch (format.kind) {
    case 'signed': return createCodec(await registerJwt(app, options), admit, { cacheSize, verify, maxTokenBytes: maxBytes })
    case 'encrypted': return await createEncryptedCodec(format.keys, admit, { cacheSize, verify, sign, maxTokenBytes: maxBytes })
  }
}

const plugin: FastifyPluginAsync<TokenCookieOptions> = async function fastifyTokenCookie (app, pluginOptions) {
  // Decorators are visible to the whole app: a second registration could only clash with the first.
  if (app.hasRequestDecorator('verifyToken')) throw new AlreadyRegisteredError()
  const options = resolveOptions(pluginOptions)
  if (!app.hasReplyDecorator('setCookie')) await app.register(fastifyCookie)
  const codec = await codecFor(app, options)
  const cookie = createCookieWriter(options.cookieName, options.cookie, options, app.serializeCookie, (request) => {
    request.log.warn(`fastify-token-cookie: a Secure cookie was set on a plain http request to ${request.hostname}; browsers drop it, so ` +
      'the login will not hold. Serve https, or behind a TLS proxy use cookie: { secure: \'auto\' } with Fastify\'s trustProxy')
  })
  const revocations = createRevocations(options, app.log)
  const { api, noteLogin } = createRevocationApi(revocations, options)
  const life = createRequestLife({ options, codec, cookie, revocations, noteLogin })

  app.decorate('tokenCookie', api)
  app.decorateRequest(kState, null)
  app.decorateReply(kSendHookRan, false)
  app.decorateRequest('verifyToken', life.verifyToken)
  app.decorateRequest('tokenExpiry', life.tokenExpiry)
  app.decorateReply('setTokenCookie', life.setTokenCookie)
  app.decorateReply('updateTokenCookie', life.updateTokenCookie)
  app.decorateReply('clearTokenCookie', life.clearTokenCookie)
  app.addHook('onRequest', life.onRequest)
  app.addHook('onSend', life.onSend)
  await storeLifecycle(app, options.store)
}

/** A store with a life of its own (a replica): `app.ready()` waits for it, `app.close()` ends it. */
async function storeLifecycle (app: FastifyInstance, store: ResolvedOptions['store']): Promise<void> {
  if (store === undefined) return
  const { ready, close } = store
  if (typeof close === 'function') app.addHook('onClose', async () => { await close.call(store) })
  if (typeof ready === 'function') await ready.call(store)
}

export const tokenCookie = fp(plugin, { name: 'fastify-token-cookie', fastify: '5.x' })
export default tokenCookie
