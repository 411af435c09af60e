// Renders a StatusDocument as Passenger's `passenger-status --show=xml`
// document: the same element names and nesting (info, supergroups,
// supergroup, group, options, processes, process), so exporters and
// monitoring agents that parse Passenger's XML read ours unchanged. Times
// are microseconds since the epoch and memory is in KB, as Passenger's; pss
// and real_memory are the private dirty memory the agent measures.
import { createHash } from 'node:crypto';
import type { GroupSnapshot, ProcessSnapshot, StatusDocument } from '../admin/protocol';
import { formatDuration } from './render-status';

type Node = [string, string | number | boolean | null | undefined | Node[], Record<string, string>?];

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(node: Node): string {
  const [name, content, attrs] = node;
  const a = attrs ? Object.entries(attrs).map(([k, v]) => ` ${k}="${escape(v)}"`).join('') : '';
  const inner = Array.isArray(content) ? content.map(render).join('') : escape(content === null || content === undefined ? '' : String(content));
  return `<${name}${a}>${inner}</${name}>`;
}

/** A stable identifier of the right shape where Passenger has a random one. */
function idOf(...parts: (string | number)[]): string {
  return createHash('sha1').update(parts.join('\0')).digest('base64url').slice(0, 20);
}

function processNode(p: ProcessSnapshot, g: GroupSnapshot, now: number): Node {
  const usec = (ms: number): number => Math.round(ms * 1000);
  const alive = p.state === 'alive';
  return ['process', [
    ['pid', p.pid],
    ['sticky_session_id', p.pid],
    ['gupid', `${p.spawned_at.toString(16)}-${idOf(p.pid, p.spawned_at).slice(0, 10)}`],
    ['concurrency', 0],
    ['sessions', p.sessions],
    ['busyness', p.sessions],
    ['processed', p.processed],
    ['spawner_creation_time', usec(p.spawned_at)],
    ['spawn_start_time', usec(p.spawned_at)],
    ['spawn_end_time', usec(p.spawned_at)],
    ['last_used', usec(p.last_used)],
    ['last_used_desc', `${formatDuration((now - p.last_used) / 1000)} ago`],
    ['uptime', formatDuration(p.uptime_s)],
    ['life_status', alive ? 'ALIVE' : 'SHUTTING_DOWN'],
    ['enabled', alive ? 'ENABLED' : 'DETACHED'],
    ['has_metrics', p.rss_kb !== null],
    ['cpu', Math.round(p.cpu_percent ?? 0)],
    ['rss', p.rss_kb ?? 0],
    ['pss', p.private_dirty_kb ?? 0],
    ['private_dirty', p.private_dirty_kb ?? 0],
    ['swap', 0],
    ['real_memory', p.private_dirty_kb ?? 0],
    ['vmsize', p.vmsize_kb ?? 0],
    ['process_group_id', p.pid],
    ['command', `${g.app_type === 'generic' ? 'Passenger GenericApp' : 'Passenger NodeApp'}: ${g.app_root}`],
  ]];
}

function groupNode(g: GroupSnapshot, now: number): Node {
  const alive = g.processes.filter((p) => p.state === 'alive').length;
  const appType = g.app_type === 'generic' ? 'generic' : 'nodejs';
  const capacity = alive + g.spawning;
  return ['supergroup', [
    ['name', g.name],
    // Passenger 6 writes READY here whatever the group does (0 processes and
    // 1 spawning included); its spawning shows in processes_being_spawned.
    ['state', 'READY'],
    ['get_wait_list_size', g.queue],
    ['capacity_used', capacity],
    ['group', [
      ['name', g.name],
      ['component_name', g.name],
      ['app_root', g.app_root],
      ['app_type', appType],
      ['environment', g.environment],
      ['uuid', idOf(g.name)],
      ['enabled_process_count', alive],
      ['disabling_process_count', 0],
      ['disabled_process_count', 0],
      ['capacity_used', capacity],
      ['get_wait_list_size', g.queue],
      ['disable_wait_list_size', 0],
      ['processes_being_spawned', g.spawning],
      ['life_status', 'ALIVE'],
      ['user', g.user],
      ['uid', g.uid],
      ['group', g.group],
      ['gid', g.gid],
      ['options', [
        ['app_root', g.app_root],
        ['app_group_name', g.name],
        ['app_type', appType],
        ['environment', g.environment],
        ['nodejs', g.nodejs],
        ['node_version', g.node_version],
      ]],
      ['processes', g.processes.map((p) => processNode(p, g, now))],
    ], { default: 'true' }],
  ]];
}

export function renderXml(doc: StatusDocument): string {
  const now = Date.parse(doc.time);
  const info: Node = ['info', [
    ['passenger_version', doc.version],
    ['group_count', doc.groups.length],
    ['process_count', doc.process_count],
    ['max', doc.max_pool_size],
    ['capacity_used', doc.capacity_used],
    ['get_wait_list_size', doc.top_level_queue],
    ['supergroups', doc.groups.map((g) => groupNode(g, now))],
  ], { version: '3' }];
  return `<?xml version="1.0" encoding="UTF-8" ?>\n${render(info)}\n`;
}
