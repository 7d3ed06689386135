/**
 * A policy file kept loaded: read and compiled at start (errors are fatal then), watched with fs.watch on its
 * directory (so editors that replace the file are seen) and reloaded after a short debounce. A bad new file
 * keeps the old policies and logs every problem.
 *
 * @module
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ConfigError } from '@tessera/spiffe/errors';
import { type PolicyCompileContext, parsePolicies, type ServerlessPolicy } from './policy.js';
import type { ServerlessLogger } from './types.js';

/** A current set of policies. */
export interface PolicySource {
  current(): readonly ServerlessPolicy[];
}

/** Options of {@link PolicyFile.load}. */
export interface PolicyFileOptions extends PolicyCompileContext {
  readonly path: string;
  readonly logger: ServerlessLogger;
  /** Debounce of file change events in ms. Default 200. */
  readonly debounceMs?: number;
  /** Called after each reload attempt (tests). */
  readonly onReload?: (result: { ok: boolean; error?: Error }) => void;
}

/** A watched policy file. */
export class PolicyFile implements PolicySource {
  readonly #opts: PolicyFileOptions;
  #policies: readonly ServerlessPolicy[];
  #lastText: string;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(opts: PolicyFileOptions, text: string, policies: readonly ServerlessPolicy[]) {
    this.#opts = opts;
    this.#lastText = text;
    this.#policies = policies;
  }

  /**
   * Loads the file and starts watching it.
   *
   * @throws {ConfigError} ERR_CONFIG_INVALID when the file is missing or invalid (every problem listed)
   */
  static async load(opts: PolicyFileOptions): Promise<PolicyFile> {
    let text: string;
    try {
      text = await readFile(opts.path, 'utf8');
    } catch (err) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `serverless: cannot read policy file ${JSON.stringify(opts.path)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    const pf = new PolicyFile(opts, text, parsePolicies(text, opts, JSON.stringify(opts.path)));
    pf.#watch();
    return pf;
  }

  current(): readonly ServerlessPolicy[] {
    return this.#policies;
  }

  #watch(): void {
    const name = basename(this.#opts.path);
    this.#watcher = watch(dirname(this.#opts.path), { persistent: false }, (_event, file) => {
      if (file !== null && file !== name) return;
      this.#schedule();
    });
    this.#watcher.on('error', (err) =>
      this.#opts.logger.warn({ err }, 'Serverless policy file watch failed'),
    );
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.reload();
    }, this.#opts.debounceMs ?? 200);
  }

  /** Reloads the file now (also called by the watcher). Unchanged content is a no-op. */
  async reload(): Promise<void> {
    if (this.#closed) return;
    const log = this.#opts.logger;
    let text: string;
    try {
      text = await readFile(this.#opts.path, 'utf8');
    } catch (err) {
      log.error(
        { err, path: this.#opts.path },
        'Serverless policy file cannot be read; keeping the current policies',
      );
      this.#opts.onReload?.({ ok: false, error: err as Error });
      return;
    }
    if (text === this.#lastText) return;
    try {
      const policies = parsePolicies(text, this.#opts, JSON.stringify(this.#opts.path));
      this.#policies = policies;
      this.#lastText = text;
      log.info(
        { path: this.#opts.path, policies: policies.map((p) => p.name) },
        'Serverless policies reloaded',
      );
      this.#opts.onReload?.({ ok: true });
    } catch (err) {
      log.error(
        { err, path: this.#opts.path },
        'Serverless policy file is invalid; keeping the current policies',
      );
      this.#opts.onReload?.({ ok: false, error: err as Error });
    }
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#watcher?.close();
  }
}
