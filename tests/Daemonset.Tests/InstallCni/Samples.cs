using System.Collections.Immutable;
using Ambient.InstallCni.Conflist;

namespace Ambient.Daemonset.Tests.InstallCni;

/// <summary>CNI configs as primary CNIs write them, in the formattings met in the field.</summary>
internal static class Samples
{
    public static readonly PluginEntry Entry = new()
    {
        AgentSocket = "/var/run/ambient/cni.sock",
        EnrollmentFile = "/var/run/ambient/enrollment.json",
        ExcludeNamespaces = ["kube-system", "ambient-system"],
        AgentTimeoutSeconds = 30,
        LogLevel = "info",
    };

    /// <summary>Two-space indented, as podman, kindnet and flannel write theirs; odd number spellings and escapes kept.</summary>
    public const string PrettyConflist = """
        {
          "cniVersion": "1.0.0",
          "name": "podman",
          "plugins": [
            {
              "type": "bridge",
              "bridge": "cni-podman0",
              "isGateway": true,
              "mtu": 1.5e3,
              "ipam": {
                "type": "host-local",
                "routes": [{ "dst": "0.0.0.0/0" }],
                "ranges": [[{ "subnet": "10.88.0.0/16", "gateway": "10.88.0.1" }]]
              },
              "vendor\u00e9": "caf\u00e9 <b>"
            },
            {
              "type": "portmap",
              "capabilities": { "portMappings": true }
            }
          ],
          "x-unknown-top-level": [1, 2, 3]
        }

        """;

    /// <summary>One line, no spaces, as some operators and tools write them.</summary>
    public const string CompactConflist =
        """{"cniVersion":"0.4.0","name":"k8s-pod-network","plugins":[{"type":"calico","log_level":"info","ipam":{"type":"calico-ipam"}},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}""";

    /// <summary>Tab-indented with CRLF line ends.</summary>
    public const string TabsConflist = "{\r\n\t\"cniVersion\": \"1.1.0\",\r\n\t\"name\": \"tabs\",\r\n\t\"plugins\": [\r\n\t\t{\r\n\t\t\t\"type\": \"ptp\"\r\n\t\t}\r\n\t]\r\n}\r\n";

    /// <summary>A single-plugin .conf.</summary>
    public const string BridgeConf = """
        {
          "cniVersion": "0.3.1",
          "name": "mynet",
          "type": "bridge",
          "bridge": "cni0",
          "ipam": { "type": "host-local", "subnet": "10.22.0.0/16" }
        }

        """;

    public static readonly ImmutableArray<string> Conflists = [PrettyConflist, CompactConflist, TabsConflist];
}
