using System.Diagnostics;
using System.Text;
using Ambient.Mesh.Config;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// The redirection rules Istio's CNI agent installs inside an enrolled pod's network namespace, in our own chains
/// (iptables) or our own table (nftables), so installing twice replaces rather than duplicates and removal takes
/// exactly what we added:
/// outbound TCP -> REDIRECT 15001; inbound TCP -> TPROXY (or REDIRECT) 15006; the agent's sockets (mark 0x539),
/// loopback, port 15008 and the kubelet's probe address 169.254.7.127 pass untouched.
/// </summary>
internal static class CaptureRules
{
    public const string KubeletProbeSource = "169.254.7.127";
    public const int RouteTable = 100;
    private const string Mark = "0x539/0xfff";
    private const string CaptureMark = "0x111/0xfff";

    /// <summary>
    /// The agent's listeners bind 127.0.0.1:15001 inside the pod and the TPROXY route goes through lo: a runtime that
    /// left the pod's loopback down would make capture fail with "Cannot assign requested address" (issue 8). Bringing
    /// it up is what every runtime does anyway (the CNI loopback plugin); say so if it fails.
    /// </summary>
    private const string LoopbackUp = "ip link set lo up || { echo 'cannot bring up loopback (lo) in the pod network namespace: the agent listens on 127.0.0.1:15001 there' >&2; exit 1; }\n";

    public static string IptablesScript(InboundCapture inbound)
    {
        var sb = new StringBuilder();
        sb.AppendLine("set -e");
        sb.Append(LoopbackUp);
        // Our chains are created (or emptied) and refilled in one iptables-restore per table; the jumps from the
        // built-in chains are added only if missing, so a repeated ADD changes nothing.
        sb.AppendLine("iptables-restore --noflush <<'RULES'");
        sb.AppendLine("*mangle");
        sb.AppendLine(":AMBIENT_PRERT - [0:0]");
        sb.AppendLine(":AMBIENT_OUTPUT - [0:0]");
        sb.AppendLine($"-A AMBIENT_OUTPUT -m connmark --mark {CaptureMark} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff");
        if (inbound == InboundCapture.Tproxy)
        {
            sb.AppendLine($"-A AMBIENT_PRERT -m mark --mark {Mark} -j CONNMARK --set-xmark {CaptureMark}");
            sb.AppendLine($"-A AMBIENT_PRERT -s {KubeletProbeSource}/32 -p tcp -j ACCEPT");
            sb.AppendLine("-A AMBIENT_PRERT ! -d 127.0.0.1/32 -i lo -p tcp -j ACCEPT");
            sb.AppendLine("-A AMBIENT_PRERT -p tcp --dport 15008 -j ACCEPT");
            sb.AppendLine("-A AMBIENT_PRERT -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
            sb.AppendLine($"-A AMBIENT_PRERT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark {Mark} -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark {CaptureMark}");
        }
        sb.AppendLine("COMMIT");
        sb.AppendLine("*nat");
        sb.AppendLine(":AMBIENT_PRERT - [0:0]");
        sb.AppendLine(":AMBIENT_OUTPUT - [0:0]");
        if (inbound == InboundCapture.Redirect)
        {
            sb.AppendLine($"-A AMBIENT_PRERT -s {KubeletProbeSource}/32 -p tcp -j ACCEPT");
            sb.AppendLine("-A AMBIENT_PRERT -i lo -j ACCEPT");
            sb.AppendLine("-A AMBIENT_PRERT -p tcp --dport 15008 -j ACCEPT");
            sb.AppendLine($"-A AMBIENT_PRERT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark {Mark} -j REDIRECT --to-ports 15006");
        }
        sb.AppendLine($"-A AMBIENT_OUTPUT -d {KubeletProbeSource}/32 -p tcp -j ACCEPT");
        sb.AppendLine($"-A AMBIENT_OUTPUT -p tcp -m mark --mark {CaptureMark} -j ACCEPT");
        sb.AppendLine("-A AMBIENT_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT");
        sb.AppendLine($"-A AMBIENT_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark {Mark} -j REDIRECT --to-ports 15001");
        sb.AppendLine("COMMIT");
        sb.AppendLine("RULES");
        foreach (var (table, chain, target) in Jumps)
        {
            sb.AppendLine($"iptables -t {table} -C {chain} -j {target} 2>/dev/null || iptables -t {table} -I {chain} 1 -j {target}");
        }
        AppendPolicyRouting(sb, inbound);
        return sb.ToString();
    }

    private static readonly (string Table, string Chain, string Target)[] Jumps =
    [
        ("mangle", "PREROUTING", "AMBIENT_PRERT"),
        ("mangle", "OUTPUT", "AMBIENT_OUTPUT"),
        ("nat", "PREROUTING", "AMBIENT_PRERT"),
        ("nat", "OUTPUT", "AMBIENT_OUTPUT"),
    ];

    public static string IptablesRemoveScript()
    {
        var sb = new StringBuilder();
        foreach (var (table, chain, target) in Jumps)
        {
            sb.AppendLine($"while iptables -t {table} -D {chain} -j {target} 2>/dev/null; do :; done");
        }
        foreach (var table in new[] { "mangle", "nat" })
        {
            foreach (var chain in new[] { "AMBIENT_PRERT", "AMBIENT_OUTPUT" })
            {
                sb.AppendLine($"iptables -t {table} -F {chain} 2>/dev/null || true");
                sb.AppendLine($"iptables -t {table} -X {chain} 2>/dev/null || true");
            }
        }
        AppendPolicyRoutingRemoval(sb);
        return sb.ToString();
    }

    public static string NftablesScript(InboundCapture inbound)
    {
        var sb = new StringBuilder();
        sb.AppendLine("set -e");
        sb.Append(LoopbackUp);
        // Declaring then deleting the table makes the load idempotent and atomic: one transaction replaces it.
        sb.AppendLine("nft -f - <<'RULES'");
        sb.AppendLine("table ip ambient {}");
        sb.AppendLine("delete table ip ambient");
        sb.AppendLine("table ip ambient {");
        sb.AppendLine("  chain prerouting_mangle {");
        sb.AppendLine("    type filter hook prerouting priority mangle; policy accept;");
        if (inbound == InboundCapture.Tproxy)
        {
            sb.AppendLine("    meta mark & 0xfff == 0x539 ct mark set ct mark & 0xfffff000 | 0x111");
            sb.AppendLine($"    ip saddr {KubeletProbeSource} meta l4proto tcp accept");
            sb.AppendLine("    iifname \"lo\" ip daddr != 127.0.0.1 meta l4proto tcp accept");
            sb.AppendLine("    tcp dport 15008 accept");
            sb.AppendLine("    ct state established,related meta l4proto tcp accept");
            sb.AppendLine("    ip daddr != 127.0.0.1 meta l4proto tcp meta mark & 0xfff != 0x539 meta mark set meta mark & 0xfffff000 | 0x111 tproxy to :15006 accept");
        }
        sb.AppendLine("  }");
        sb.AppendLine("  chain output_mangle {");
        sb.AppendLine("    type route hook output priority mangle; policy accept;");
        sb.AppendLine("    ct mark & 0xfff == 0x111 meta mark set ct mark");
        sb.AppendLine("  }");
        sb.AppendLine("  chain prerouting_nat {");
        sb.AppendLine("    type nat hook prerouting priority dstnat; policy accept;");
        if (inbound == InboundCapture.Redirect)
        {
            sb.AppendLine($"    ip saddr {KubeletProbeSource} meta l4proto tcp accept");
            sb.AppendLine("    iifname \"lo\" accept");
            sb.AppendLine("    tcp dport 15008 accept");
            sb.AppendLine("    ip daddr != 127.0.0.1 meta l4proto tcp meta mark & 0xfff != 0x539 redirect to :15006");
        }
        sb.AppendLine("  }");
        sb.AppendLine("  chain output_nat {");
        sb.AppendLine("    type nat hook output priority -100; policy accept;");
        sb.AppendLine($"    ip daddr {KubeletProbeSource} meta l4proto tcp accept");
        sb.AppendLine("    meta l4proto tcp meta mark & 0xfff == 0x111 accept");
        sb.AppendLine("    oifname \"lo\" ip daddr != 127.0.0.1 accept");
        sb.AppendLine("    ip daddr != 127.0.0.1 meta l4proto tcp meta mark & 0xfff != 0x539 redirect to :15001");
        sb.AppendLine("  }");
        sb.AppendLine("}");
        sb.AppendLine("RULES");
        AppendPolicyRouting(sb, inbound);
        return sb.ToString();
    }

    public static string NftablesRemoveScript()
    {
        var sb = new StringBuilder();
        sb.AppendLine("nft delete table ip ambient 2>/dev/null || true");
        AppendPolicyRoutingRemoval(sb);
        return sb.ToString();
    }

    /// <summary>TPROXY needs marked packets routed to the local stack: fwmark 0x111 -> table 100 -> local.</summary>
    private static void AppendPolicyRouting(StringBuilder sb, InboundCapture inbound)
    {
        if (inbound != InboundCapture.Tproxy)
        {
            AppendPolicyRoutingRemoval(sb);
            return;
        }
        sb.AppendLine($"ip rule show | grep -q 'fwmark 0x111/0xfff lookup {RouteTable}' || ip rule add fwmark {CaptureMark} pref 32764 lookup {RouteTable}");
        sb.AppendLine($"ip route replace local 0.0.0.0/0 dev lo table {RouteTable}");
    }

    private static void AppendPolicyRoutingRemoval(StringBuilder sb)
    {
        sb.AppendLine($"while ip rule del fwmark {CaptureMark} lookup {RouteTable} 2>/dev/null; do :; done");
        sb.AppendLine($"ip route flush table {RouteTable} 2>/dev/null || true");
    }

    public static Task InstallAsync(string netns, CaptureFirewall backend, InboundCapture inbound, CancellationToken ct) =>
        RunInNetnsAsync(netns, backend == CaptureFirewall.Iptables ? IptablesScript(inbound) : NftablesScript(inbound), ct);

    public static Task RemoveAsync(string netns, CaptureFirewall backend, CancellationToken ct) =>
        RunInNetnsAsync(netns, backend == CaptureFirewall.Iptables ? IptablesRemoveScript() : NftablesRemoveScript(), ct);

    /// <summary>True when our rules are present in the namespace (for CNI CHECK and re-adoption).</summary>
    public static async Task<bool> PresentAsync(string netns, CaptureFirewall backend, CancellationToken ct)
    {
        string check = backend == CaptureFirewall.Iptables
            ? "iptables -t nat -C OUTPUT -j AMBIENT_OUTPUT && iptables -t nat -S AMBIENT_OUTPUT | grep -q 'REDIRECT --to-ports 15001'"
            : "nft list chain ip ambient output_nat | grep -q 'redirect to :15001'";
        try
        {
            await RunInNetnsAsync(netns, check, ct).ConfigureAwait(false);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Runs a shell script inside the pod's network namespace (nsenter), failing with its stderr.</summary>
    internal static async Task RunInNetnsAsync(string netns, string script, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("nsenter", [$"--net={netns}", "sh", "-e"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var p = Process.Start(psi) ?? throw new IOException("cannot start nsenter");
        await p.StandardInput.WriteAsync(script).ConfigureAwait(false);
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync(ct);
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        if (p.ExitCode != 0)
        {
            throw new IOException($"capture rules in {netns} failed (exit {p.ExitCode}): {(await stderr.ConfigureAwait(false)).Trim()} {(await stdout.ConfigureAwait(false)).Trim()}".Trim());
        }
    }
}
