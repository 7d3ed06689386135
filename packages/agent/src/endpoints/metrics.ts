/**
 * Call metrics of the public endpoints (Workload API and SDS): a grpc-js server interceptor that reports every
 * call's end with its gRPC status code, and the opening and closing of streams, to hooks the agent turns into
 * Prometheus metrics.
 *
 * @module
 */
import {
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerMethodDefinition,
  status,
} from '@grpc/grpc-js';

/** The RPC a call is for: `service` (`SpiffeWorkloadAPI`, `envoy.service.secret.v3.SecretDiscoveryService`) and `method`. */
export interface CallName {
  readonly service: string;
  readonly method: string;
}

/** Hooks of {@link createCallMetricsInterceptor}; each must not throw. */
export interface CallMetricsHooks {
  /** A streaming call started (client, server or bidi stream). */
  streamOpened?(name: CallName): void;
  /** A streaming call ended (status sent or cancelled); called once per {@link streamOpened}. */
  streamClosed?(name: CallName): void;
  /**
   * A call ended with `code` (the gRPC status name: `OK`, `INVALID_ARGUMENT`, … ; `CANCELLED` when the client
   * went away), `seconds` after it started.
   */
  callEnded?(name: CallName, code: string, seconds: number): void;
}

/** Splits a gRPC path `/pkg.Service/Method` into service and method. */
export function callNameOf(path: string): CallName {
  const slash = path.lastIndexOf('/');
  if (!path.startsWith('/') || slash <= 0) return { service: 'unknown', method: 'unknown' };
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/** The gRPC status name of a numeric code (`UNKNOWN_<n>` for a code outside the enum). */
export function statusName(code: number): string {
  const name = (status as unknown as Record<number, string | undefined>)[code];
  return name ?? `UNKNOWN_${code}`;
}

/**
 * Creates a grpc-js server interceptor reporting call ends (by service, method and status code) and open
 * streams to `hooks`. The call itself is not changed.
 *
 * @example
 * ```ts
 * const server = new Server({ interceptors: [createCallMetricsInterceptor({ callEnded: (n, code) => calls.inc({ method: n.method, code }) })] });
 * ```
 */
export function createCallMetricsInterceptor(hooks: CallMetricsHooks): ServerInterceptor {
  return (
    def: ServerMethodDefinition<unknown, unknown>,
    call: ServerInterceptingCallInterface,
  ): ServerInterceptingCall => {
    const name = callNameOf(def.path);
    const streaming = def.requestStream || def.responseStream;
    const start = performance.now();
    let ended = false;
    const end = (code: string): void => {
      if (ended) return;
      ended = true;
      hooks.callEnded?.(name, code, (performance.now() - start) / 1000);
      if (streaming) hooks.streamClosed?.(name);
    };
    if (streaming) hooks.streamOpened?.(name);
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onCancel() {
            end('CANCELLED');
          },
        });
      },
      sendStatus(s, next) {
        end(statusName(s.code));
        next(s);
      },
    });
  };
}
