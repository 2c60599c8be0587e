/**
 * The CLI's help texts: the overall usage and one text per command. Text
 * only, no imports, so `--help` loads nothing else.
 */

export const COMMANDS = ['probe', 'explain', 'agent', 'report', 'version'] as const;
export type CommandName = (typeof COMMANDS)[number];

export const USAGE = `Usage:
  pullprobe probe [flags] TARGET...    probe images (registry/repo:tag, repo@sha256:…, nginx)
                                       or bare registries (registry.example.com[:port])
  pullprobe agent --config FILE        run the node agent (DaemonSet process)
  pullprobe explain [--json] "MESSAGE" classify a kubelet/containerd pull error message
  pullprobe report [--json] [flags]    per-subnet × registry verdicts from node annotations
  pullprobe version                    print the version (also --version)

Run \`pullprobe COMMAND --help\` for a command's flags.
`;

const PROBE = `Usage: pullprobe probe [flags] TARGET...

Walks the image-pull path from this node — reference, DNS, TCP, TLS, /v2/,
auth and token, manifest — and names the first step that fails, with the fix.
TARGET is an image (registry/repo:tag, repo@sha256:…, nginx) or a bare
registry (registry.example.com[:port]).

Flags:
  --json                         print the array of results as JSON
  --timeout DURATION             whole-probe deadline per target (default 10s)
  --resolv-conf FILE             resolver configuration (default: the node's /etc/resolv.conf)
  --hosts FILE                   hosts file (default: the node's /etc/hosts)
  --host-root DIR                where the node's filesystem is mounted (default /)
  --ca-file FILE                 extra trusted CA (PEM); may repeat
  --docker-config FILE           docker config.json / .dockerconfigjson with credentials
  --containerd-config-path DIRS  containerd certs.d directories, ':'-separated
                                 (default /etc/containerd/certs.d:/etc/docker/certs.d)
  --containerd-config FILE       containerd's config.toml: CRI registry config_path, mirrors and
                                 per-registry auth/tls (default /etc/containerd/config.toml; absent is fine)
  --credential-provider-config FILE
                                 the kubelet's CredentialProviderConfig (YAML or JSON)
  --credential-provider-bin-dir DIR
                                 where the credential provider executables are
  --proxy-from-pid PID           use the proxy settings (HTTPS_PROXY, NO_PROXY, …) of that
                                 process, e.g. containerd's (default: this process's own)
  --no-proxy                     ignore proxy settings
  --cri-endpoint URL             the container runtime's CRI socket
                                 (default unix:///run/containerd/containerd.sock)
  --pull                         also pull the image through the CRI, with the credentials the
                                 kubelet would pass (step "runtime")
  --platform OS/ARCH[/VARIANT]   platform to look for in image indexes (default: this host)
  --concurrency N                targets probed at once (default 4)
  -h, --help                     show this help

Exit status: 0 every target ok, 1 at least one failed, 2 usage or configuration error.
`;

const EXPLAIN = `Usage: pullprobe explain [--json] "MESSAGE"
       pullprobe explain [--json] -        (read the text from stdin)
       kubectl describe pod POD | pullprobe explain

Classifies a pasted kubelet or containerd image-pull error (or \`kubectl describe
pod\` text, or \`kubectl get events -o json\`) into the failing step, the reason,
the cause and the fix. Nothing is sent over the network.

Flags:
  --json       print {"stage","reason","cause","message","hint"}
  -h, --help   show this help

Exit status: 0 a reason was found, 1 none, 2 usage or input error.
`;

const AGENT = `Usage: pullprobe agent --config FILE

Runs the node agent (the DaemonSet process): probes the configured targets
periodically, serves /metrics, /probe, /healthz, /readyz and a status page, and
writes the node annotation, condition and events. SIGHUP reloads the config;
SIGTERM or SIGINT stops.

Flags:
  --config FILE   the agent's YAML configuration (required)
  -h, --help      show this help

Exit status: 0 stopped cleanly, 2 usage or configuration error.
`;

const REPORT = `Usage: pullprobe report [--json] [--heartbeat 10m] [--kubectl PATH] [--context NAME]

Per-subnet × registry verdicts from the nodes' pullprobe.dev/status annotations.
Reads \`kubectl get nodes -o json\` from stdin when it is piped in, else runs kubectl.

Flags:
  --json              print an array of rows
  --heartbeat DUR     the agents' heartbeat; older annotations are stale (default 10m)
  --kubectl PATH      the kubectl to run (default kubectl)
  --context NAME      kubectl context
  -h, --help          show this help

Exit status: 0 every row ok, 1 any row not ok (stale included), 2 usage or input error.
`;

const VERSION = `Usage: pullprobe version
       pullprobe --version

Prints pullprobe's version.
`;

export const COMMAND_HELP: Readonly<Record<CommandName, string>> = {
  probe: PROBE,
  explain: EXPLAIN,
  agent: AGENT,
  report: REPORT,
  version: VERSION,
};

export function isCommandName(s: string | undefined): s is CommandName {
  return (COMMANDS as readonly string[]).includes(s ?? '');
}

/** True when the arguments ask for help (`-h`/`--help` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}
