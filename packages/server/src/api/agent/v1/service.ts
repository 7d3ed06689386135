/**
 * The Agent service (`spire.api.server.agent.v1.Agent`): node attestation (challenge/response stream),
 * renewal, list/get/count, ban, delete (evict), and join tokens, with SPIRE's semantics and status codes.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { type ServerDuplexStream, status } from '@grpc/grpc-js';
import {
  type AgentServer,
  type AgentX509SVIDParams,
  type AttestAgentRequest,
  type AttestAgentResponse,
  type CountAgentsRequest_Filter,
  GrpcStatusError,
  invalidArgument,
  SelectorMatch_MatchBehavior,
  type X509SVID,
} from '@tessera/common/api';
import { parseCsr } from '@tessera/common/x509';
import { SpiffeError } from '@tessera/spiffe/errors';
import { type SpiffeId, validatePathSegment } from '@tessera/spiffe/spiffeid';
import type { ListAttestedNodesRequest } from '../../../datastore/datastore.js';
import type { AttestedNode, MatchMode, Selector } from '../../../datastore/types.js';
import { MAX_PAGE_SIZE } from '../../../datastore/validate.js';
import { joinTokenAgentId } from '../../../plugin/nodeattestor/join-token/join-token.js';
import { type ApiContext, agentOf, callerOf, takeSigning, unary } from '../../context.js';
import {
  agentToApi,
  checkWorkloadId,
  errorMessage,
  idToApi,
  mapError,
  parseLocalId,
  parseSelectors,
} from '../../convert.js';

const MAX_JOIN_TOKEN_TTL = 10 * 365 * 86_400;
/** Default time an AttestAgent stream may take from its start to the result (a hung peer holds nothing longer). */
export const DEFAULT_ATTESTATION_TIMEOUT_MS = 30_000;
/** Messages an attestation stream may have waiting to be read; more is a protocol violation. */
const MAX_PENDING_ATTEST_MESSAGES = 4;

function parseNodeFilter(
  f: CountAgentsRequest_Filter | undefined,
): Omit<ListAttestedNodesRequest, 'pagination'> {
  if (f === undefined) return {};
  const out: { -readonly [K in keyof ListAttestedNodesRequest]?: ListAttestedNodesRequest[K] } = {};
  if (f.byAttestationType !== '') out.byAttestationType = f.byAttestationType;
  if (f.byBanned !== undefined) out.byBanned = f.byBanned;
  if (f.byCanReattest !== undefined) out.byCanReattest = f.byCanReattest;
  if (f.byExpiresBefore !== '') {
    const d = new Date(f.byExpiresBefore);
    if (Number.isNaN(d.getTime()))
      throw invalidArgument('filter.by_expires_before', 'must be an RFC 3339 time');
    out.byExpiresBefore = d;
  }
  if (f.bySelectorMatch !== undefined) {
    const modes: Record<number, MatchMode> = {
      [SelectorMatch_MatchBehavior.MATCH_EXACT]: 'exact',
      [SelectorMatch_MatchBehavior.MATCH_SUBSET]: 'subset',
      [SelectorMatch_MatchBehavior.MATCH_SUPERSET]: 'superset',
      [SelectorMatch_MatchBehavior.MATCH_ANY]: 'any',
    };
    const match = modes[f.bySelectorMatch.match];
    if (match === undefined)
      throw invalidArgument('filter.by_selector_match.match', 'unknown match behavior');
    out.bySelectors = {
      selectors: parseSelectors('filter.by_selector_match', f.bySelectorMatch.selectors, true),
      match,
    };
  }
  return out;
}

/** Parses and verifies a CSR (proof of possession); InvalidArgument naming `field` otherwise. */
export function parseCsrField(field: string, csr: Buffer | undefined): ReturnType<typeof parseCsr> {
  if (csr === undefined || csr.length === 0) throw invalidArgument(field, 'missing CSR');
  try {
    return parseCsr(csr);
  } catch (err) {
    throw invalidArgument(field, errorMessage(err));
  }
}

function svidOf(agentId: string, signed: { chain: readonly Buffer[]; notAfter: Date }): X509SVID {
  return {
    id: idToApi(agentId),
    certChain: [...signed.chain],
    expiresAt: BigInt(Math.floor(signed.notAfter.getTime() / 1000)),
    hint: '',
  };
}

/** Creates the Agent service implementation. */
export function createAgentService(ctx: ApiContext): AgentServer {
  const signAgent = (agentId: string, params: AgentX509SVIDParams | undefined, field: string) => {
    const csr = parseCsrField(field, params?.csr);
    try {
      return ctx.ca.signAgentSvid({ agentId, publicKey: csr.spkiDer, ttlSeconds: ctx.defaultX509SvidTtl });
    } catch (err) {
      throw mapError(err, 'agent SVID');
    }
  };

  const attest = async (call: ServerDuplexStream<AttestAgentRequest, AttestAgentResponse>): Promise<void> => {
    const caller = callerOf(ctx, call);
    const messages: AttestAgentRequest[] = [];
    let waiter: ((m: AttestAgentRequest | undefined) => void) | undefined;
    let ended = false;
    let overflow = false;
    call.on('data', (m: AttestAgentRequest) => {
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w(m);
      } else if (messages.length >= MAX_PENDING_ATTEST_MESSAGES) {
        // Bounded: a peer streaming messages nobody asked for gets an error at the next read.
        overflow = true;
      } else messages.push(m);
    });
    const onEnd = () => {
      ended = true;
      waiter?.(undefined);
    };
    call.on('end', onEnd);
    call.on('cancelled', onEnd);
    // The whole exchange has a deadline: a peer that never sends its params or its challenge response is cut off.
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new GrpcStatusError(status.DEADLINE_EXCEEDED, 'attestation timed out')),
        ctx.attestationTimeoutMs ?? DEFAULT_ATTESTATION_TIMEOUT_MS,
      );
    });
    expired.catch(() => {});
    const next = (): Promise<AttestAgentRequest | undefined> => {
      if (overflow) return Promise.reject(invalidArgument('challenge_response', 'too many messages'));
      const m = messages.shift();
      if (m !== undefined) return Promise.resolve(m);
      if (ended) return Promise.resolve(undefined);
      return Promise.race([
        new Promise<AttestAgentRequest | undefined>((resolve) => {
          waiter = resolve;
        }),
        expired,
      ]);
    };
    try {
      await attestWith(call, caller, next);
    } finally {
      clearTimeout(timer);
      waiter = undefined;
    }
  };

  const attestWith = async (
    call: ServerDuplexStream<AttestAgentRequest, AttestAgentResponse>,
    caller: ReturnType<typeof callerOf>,
    next: () => Promise<AttestAgentRequest | undefined>,
  ): Promise<void> => {
    const first = await next();
    if (first === undefined) throw invalidArgument('params', 'missing params');
    const params = first.params;
    if (params === undefined) throw invalidArgument('params', 'missing params');
    const data = params.data;
    if (data === undefined) throw invalidArgument('params.data', 'missing attestation data');
    if (data.type === '') throw invalidArgument('params.data.type', 'missing attestation data type');
    const csr = parseCsrField('params.params.csr', params.params?.csr);
    const attestor = ctx.attestors.get(data.type);
    if (attestor === undefined) {
      throw new GrpcStatusError(
        status.FAILED_PRECONDITION,
        `error getting node attestor: could not find node attestor type "${data.type}"`,
      );
    }
    let result: Awaited<ReturnType<typeof attestor.attest>>;
    try {
      result = await attestor.attest(data.payload, async (challenge) => {
        call.write({ challenge });
        const reply = await next();
        if (reply === undefined || reply.challengeResponse === undefined) {
          throw invalidArgument('challenge_response', 'missing challenge response');
        }
        return reply.challengeResponse;
      });
    } catch (err) {
      if (err instanceof GrpcStatusError) throw err;
      if (err instanceof SpiffeError && err.code === 'ERR_NODE_ATTESTATION_INVALID') {
        throw new GrpcStatusError(status.INVALID_ARGUMENT, `failed to attest: ${err.message}`, {
          cause: err,
        });
      }
      if (err instanceof SpiffeError && err.code === 'ERR_NODE_ATTESTATION_FAILED') {
        throw new GrpcStatusError(status.PERMISSION_DENIED, `failed to attest: ${err.message}`, {
          cause: err,
        });
      }
      throw mapError(err, 'attestation');
    }
    const agentId = result.agentId;
    const existing = await ctx.datastore.fetchAttestedNode(agentId);
    if (existing?.banned)
      throw new GrpcStatusError(status.PERMISSION_DENIED, 'failed to attest: agent is banned');
    if (existing !== undefined && !existing.canReattest && !result.canReattest) {
      throw new GrpcStatusError(
        status.PERMISSION_DENIED,
        'failed to attest: attestation data has already been used to attest an agent',
      );
    }
    let signed: ReturnType<typeof ctx.ca.signAgentSvid>;
    try {
      signed = ctx.ca.signAgentSvid({ agentId, publicKey: csr.spkiDer, ttlSeconds: ctx.defaultX509SvidTtl });
    } catch (err) {
      throw mapError(err, 'agent SVID');
    }
    try {
      if (existing === undefined) {
        await ctx.datastore.createAttestedNode({
          spiffeId: agentId,
          attestationType: attestor.type,
          certSerial: signed.serialNumber,
          certNotAfter: signed.notAfter,
          newCertSerial: undefined,
          newCertNotAfter: undefined,
          banned: false,
          canReattest: result.canReattest,
        });
      } else {
        await ctx.datastore.updateAttestedNode(
          {
            ...existing,
            attestationType: attestor.type,
            certSerial: signed.serialNumber,
            certNotAfter: signed.notAfter,
            newCertSerial: undefined,
            newCertNotAfter: undefined,
            canReattest: result.canReattest,
          },
          {
            attestationType: true,
            certSerial: true,
            certNotAfter: true,
            newCertSerial: true,
            newCertNotAfter: true,
            canReattest: true,
          },
        );
      }
      await ctx.datastore.setNodeSelectors(agentId, result.selectors as Selector[]);
    } catch (err) {
      throw mapError(err, 'attested node');
    }
    await ctx.index.refresh();
    ctx.log.info(
      { agent_id: agentId, attestation_type: attestor.type, caller_address: caller.address },
      'Agent attested',
    );
    call.write({ result: { svid: svidOf(agentId, signed), reattestable: result.canReattest } });
    call.end();
  };

  return {
    attestAgent(call) {
      attest(call).catch((err: unknown) => {
        const e = err instanceof GrpcStatusError ? err : mapError(err, 'attestation');
        ctx.log.warn({ err, code: status[e.code] }, 'Agent attestation failed');
        call.emit('error', e);
      });
    },

    renewAgent: unary(ctx, async (req, call) => {
      const agentId = agentOf(ctx, call);
      takeSigning(ctx, agentId, 1);
      const node = await ctx.datastore.fetchAttestedNode(agentId);
      if (node === undefined) throw new GrpcStatusError(status.NOT_FOUND, 'agent not found');
      if (node.banned) throw new GrpcStatusError(status.PERMISSION_DENIED, 'agent is banned');
      const signed = signAgent(agentId, req.params, 'params.csr');
      // SPIRE's two-phase renewal: the new serial becomes current when the agent first uses it.
      try {
        await ctx.datastore.updateAttestedNode(
          { ...node, newCertSerial: signed.serialNumber, newCertNotAfter: signed.notAfter },
          { newCertSerial: true, newCertNotAfter: true },
        );
      } catch (err) {
        throw mapError(err, 'agent');
      }
      await ctx.index.refresh();
      return { svid: svidOf(agentId, signed) };
    }),

    countAgents: unary(ctx, async (req) => {
      const filter = parseNodeFilter(req.filter);
      try {
        return { count: await ctx.datastore.countAttestedNodes(filter) };
      } catch (err) {
        throw mapError(err, 'agents');
      }
    }),

    listAgents: unary(ctx, async (req) => {
      const filter = parseNodeFilter(req.filter);
      if (req.pageSize < 0) throw invalidArgument('page_size', 'must not be negative');
      try {
        const page = await ctx.datastore.listAttestedNodes({
          ...filter,
          pagination: {
            token: req.pageToken === '' ? undefined : req.pageToken,
            pageSize: req.pageSize === 0 ? MAX_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE),
          },
        });
        return { agents: page.items.map(agentToApi), nextPageToken: page.nextPageToken ?? '' };
      } catch (err) {
        throw mapError(err, 'agents');
      }
    }),

    getAgent: unary(ctx, async (req) => {
      const id = parseLocalId('id', req.id, ctx.trustDomain).toString();
      let node: AttestedNode | undefined;
      try {
        node = await ctx.datastore.fetchAttestedNode(id);
      } catch (err) {
        throw mapError(err, 'agent');
      }
      if (node === undefined) throw new GrpcStatusError(status.NOT_FOUND, 'agent not found');
      return agentToApi(node);
    }),

    deleteAgent: unary(ctx, async (req) => {
      const id = parseLocalId('id', req.id, ctx.trustDomain).toString();
      try {
        await ctx.datastore.deleteAttestedNode(id);
      } catch (err) {
        throw mapError(err, 'agent');
      }
      await ctx.index.refresh();
      return {};
    }),

    banAgent: unary(ctx, async (req) => {
      const id = parseLocalId('id', req.id, ctx.trustDomain).toString();
      try {
        const node = await ctx.datastore.fetchAttestedNode(id);
        if (node === undefined) throw new GrpcStatusError(status.NOT_FOUND, 'agent not found');
        await ctx.datastore.updateAttestedNode(
          { ...node, banned: true, certSerial: '', newCertSerial: undefined, newCertNotAfter: undefined },
          { banned: true, certSerial: true, newCertSerial: true, newCertNotAfter: true },
        );
      } catch (err) {
        throw mapError(err, 'agent');
      }
      await ctx.index.refresh();
      return {};
    }),

    createJoinToken: unary(ctx, async (req) => {
      if (!Number.isInteger(req.ttl) || req.ttl < 1 || req.ttl > MAX_JOIN_TOKEN_TTL) {
        throw invalidArgument('ttl', `must be from 1 to ${MAX_JOIN_TOKEN_TTL} seconds`);
      }
      let token = req.token;
      if (token === '') token = randomUUID();
      else {
        try {
          validatePathSegment(token);
        } catch (err) {
          throw invalidArgument('token', errorMessage(err));
        }
        if (token.length > 255) throw invalidArgument('token', 'must be at most 255 characters');
      }
      let aliasId: SpiffeId | undefined;
      if (req.agentId !== undefined) {
        aliasId = parseLocalId('agent_id', req.agentId, ctx.trustDomain);
        if (aliasId.path === '') throw invalidArgument('agent_id', 'must have a path');
        checkWorkloadId('agent_id', aliasId);
      }
      const expiresAt = new Date(ctx.now().getTime() + req.ttl * 1000);
      try {
        await ctx.datastore.createJoinToken({ token, expiresAt });
        if (aliasId !== undefined) {
          // As SPIRE: the given ID becomes an alias of the agent that uses the token.
          const parentId = joinTokenAgentId(ctx.trustDomain, token).toString();
          await ctx.datastore.createEntry({
            spiffeId: aliasId.toString(),
            parentId,
            selectors: [{ type: 'spiffe_id', value: parentId }],
            x509SvidTtl: 0,
            jwtSvidTtl: 0,
            dnsNames: [],
            federatesWith: [],
            admin: false,
            downstream: false,
            storeSvid: false,
            hint: '',
            expiresAt: undefined,
          });
        }
      } catch (err) {
        throw mapError(err, 'join token');
      }
      await ctx.index.refresh();
      return { value: token, expiresAt: BigInt(Math.floor(expiresAt.getTime() / 1000)) };
    }),

    postStatus: unary(ctx, async () => {
      throw new GrpcStatusError(status.UNIMPLEMENTED, 'unimplemented');
    }),
  };
}
