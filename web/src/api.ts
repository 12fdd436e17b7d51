// The public functions the app calls, by their Convex paths. sessionbase has no generated
// `api.d.ts`: each reference is typed here by hand, from the function table in the README.
import { makeFunctionReference } from "convex/server";
import type { PaginationOptions, PaginationResult } from "convex/server";

export type Tokens = {
  input: number;
  cached: number;
  output: number;
  reasoning: number;
  total: number;
};

export type ThreadSummary = {
  id: string;
  title: string | null;
  titleSource: string | null;
  snippet: string | null;
  messageCount: number;
  lastMessageAt: number | null;
  createdAt: number | null;
  updatedAt: number | null;
  source: string | null;
  projectId: string | null;
  archived: boolean;
  pinned: boolean;
  parentThreadId: string | null;
  forkedFromId: string | null;
  agentRole: string | null;
  agentNickname: string | null;
  model: string | null;
  cwd: string | null;
  machine: string | null;
  subagentCount?: number;
};

export type ThreadDetail = ThreadSummary & {
  originator: string | null;
  cliVersion: string | null;
  modelProvider: string | null;
  git: { commit_hash?: string; branch?: string; repository_url?: string } | null;
  rolloutPath: string | null;
  tokens: Tokens | null;
  resumeCommand: string;
  itemCount?: number;
};

export type MessageData = Record<string, unknown>;

export type Message = {
  id: string;
  threadId: string;
  idx: number;
  turnId: string | null;
  ts: number | null;
  role: "user" | "assistant" | "system";
  kind: string;
  text: string;
  data: MessageData;
};

export type Project = {
  id: string;
  name: string;
  workingDir: string;
  repoUrl: string | null;
  repoBranch: string | null;
  machine: string | null;
  createdAt: number | null;
  updatedAt: number | null;
  threadCount: number;
  lastActiveAt: number | null;
};

export type Skill = {
  id: string;
  scope: string;
  name: string;
  description: string;
  shortDescription: string | null;
  license: string | null;
  allowedTools: string[] | null;
  path: string;
  projectId: string | null;
};

export type SkillProblem = { path: string; scope: string; reason: string };

export type Status = {
  threads: number;
  messages: number;
  files: number;
  errors: number;
  lastVersion: number;
  mirror?: "live" | "catching_up" | "stopped" | "standby" | "off";
  lagBytes?: number;
  codexHomes?: string[];
  skillProblems?: SkillProblem[];
  exposure?: Exposure;
  devices?: { paired: number; revoked: number };
};

/** How the server is reached: what it listens on, the addresses a device may use. */
export type Exposure = {
  listen: string;
  urls: string[];
  tls: boolean;
  requireAuth: boolean;
  loopbackOnly: boolean;
};

export type SearchMode = "hybrid" | "text" | "semantic";

export type SearchHit = {
  threadId: string;
  idx: number;
  score: number;
  snippet: string;
  role: string;
  kind: string;
  ts: number | null;
  threadTitle: string | null;
  projectId: string | null;
  source: string | null;
};

export type ThreadHit = {
  threadId: string;
  title: string | null;
  projectId: string | null;
  source: string | null;
  score: number;
  hitCount: number;
  hits: SearchHit[];
};

export type SearchArgs = {
  q: string;
  mode?: SearchMode;
  projectId?: string;
  role?: "user" | "assistant" | "system";
  kind?: string;
  source?: string;
  since?: number;
  includeSubagents?: boolean;
  limit?: number;
};

export type ThreadListArgs = {
  projectId?: string;
  source?: string;
  includeArchived?: boolean;
  pinned?: boolean;
  parentId?: string;
};

export type Scope = "read" | "write" | "admin" | "run";

export type Device = {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: number;
  lastSeenAt: number | null;
  lastIp: string | null;
  userAgent: string | null;
  revokedAt: number | null;
};

export type PairingCode = {
  code: string | null; // null when a retried call repeats an earlier result
  urls: string[];
  expiresAt: number;
  scopes: Scope[];
};

const query = <Args extends Record<string, unknown>, Result>(path: string) =>
  makeFunctionReference<"query", Args, Result>(path);
const mutation = <Args extends Record<string, unknown>, Result>(path: string) =>
  makeFunctionReference<"mutation", Args, Result>(path);

export const api = {
  status: query<Record<string, never>, Status>("status:get"),
  threadsList: query<ThreadListArgs & { paginationOpts: PaginationOptions }, PaginationResult<ThreadSummary>>(
    "threads:list",
  ),
  threadsGet: query<{ id: string }, ThreadDetail | null>("threads:get"),
  threadsSimilar: query<{ threadId: string; limit?: number }, ThreadHit[]>("threads:similar"),
  messagesList: query<{ threadId: string; paginationOpts: PaginationOptions }, PaginationResult<Message>>(
    "messages:list",
  ),
  messagesTail: query<{ threadId: string; n: number }, Message[]>("messages:tail"),
  projects: query<Record<string, never>, Project[]>("projects:list"),
  skills: query<{ projectId?: string }, Skill[]>("skills:list"),
  searchThreads: query<SearchArgs, ThreadHit[]>("search:threads"),
  rename: mutation<{ id: string; title: string | null }, null>("threads:rename"),
  setPinned: mutation<{ id: string; pinned: boolean }, null>("threads:setPinned"),
  setArchived: mutation<{ id: string; archived: boolean }, null>("threads:setArchived"),
  devices: query<Record<string, never>, Device[]>("devices:list"),
  revokeDevice: mutation<{ id: string }, null>("devices:revoke"),
  renameDevice: mutation<{ id: string; name: string }, null>("devices:rename"),
  createPairing: mutation<{ name?: string; scopes: Scope[]; ttlSeconds: number }, PairingCode>(
    "pairing:create",
  ),
};
