using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Ambient.Mesh.Identity;
using Ambient.Mesh.State;
using Ambient.Ztunnel.Proxy;

namespace Ambient.Ztunnel.Admin;

/// <summary>The <c>/config_dump</c> document: the live state as the agent sees it. Certificates, never private keys.</summary>
internal static class ConfigDump
{
    public static string Render(MeshSnapshot snapshot, string node, IReadOnlyList<WorkloadCertificate> certificates, ConnectionTracker tracker, int pooledConnections, Func<Mesh.Model.Workload, bool> isLocal)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            var config = snapshot.Config;
            w.WriteStartObject();
            w.WriteString("node", node);
            w.WriteNumber("configVersion", snapshot.Version);
            w.WriteString("configSource", config.SourcePath ?? "(embedded default)");
            w.WriteString("trustDomain", config.TrustDomain);
            w.WriteString("mode", config.Mode.ToString().ToLowerInvariant());
            w.WriteStartArray("workloads");
            foreach (var wl in config.Workloads)
            {
                w.WriteStartObject();
                w.WriteString("uid", wl.Uid);
                w.WriteString("name", wl.Name);
                w.WriteString("namespace", wl.Namespace);
                w.WriteString("serviceAccount", wl.ServiceAccount);
                w.WriteString("identity", wl.SpiffeId(config.TrustDomain));
                w.WriteStartArray("workloadIps");
                foreach (var ip in wl.WorkloadIps)
                {
                    w.WriteStringValue(ip.ToString());
                }
                w.WriteEndArray();
                w.WriteString("protocol", wl.Protocol == Mesh.Model.InboundProtocol.Hbone ? "HBONE" : "TCP");
                w.WriteString("node", wl.Node);
                w.WriteString("status", wl.Status.ToString());
                w.WriteBoolean("local", isLocal(wl));
                if (!wl.Services.IsEmpty)
                {
                    w.WriteStartArray("services");
                    foreach (var key in wl.Services.Keys)
                    {
                        w.WriteStringValue(key);
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("services");
            foreach (var svc in config.Services)
            {
                w.WriteStartObject();
                w.WriteString("name", svc.Name);
                w.WriteString("namespace", svc.Namespace);
                w.WriteString("hostname", svc.Hostname);
                w.WriteStartArray("vips");
                foreach (var vip in svc.Vips)
                {
                    w.WriteStringValue(vip.ToString());
                }
                w.WriteEndArray();
                w.WriteStartObject("ports");
                foreach (var (port, target) in svc.Ports)
                {
                    w.WriteNumber(port.ToString(System.Globalization.CultureInfo.InvariantCulture), target);
                }
                w.WriteEndObject();
                w.WriteNumber("endpoints", snapshot.EndpointsOf(svc).Count);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("policies");
            foreach (var p in config.Policies)
            {
                w.WriteStartObject();
                w.WriteString("name", p.Name);
                w.WriteString("namespace", p.Namespace);
                w.WriteString("scope", p.Scope.ToString());
                w.WriteString("action", p.Action.ToString());
                w.WriteBoolean("dryRun", p.DryRun);
                w.WriteNumber("rules", p.Rules.Length);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("certificates");
            foreach (var c in certificates)
            {
                w.WriteStartObject();
                w.WriteString("identity", c.Id.ToString());
                w.WriteString("serialNumber", c.Leaf.SerialNumber);
                w.WriteString("notBefore", c.NotBefore);
                w.WriteString("notAfter", c.NotAfter);
                w.WriteString("issuer", c.Leaf.Issuer);
                w.WriteStartArray("certChain");
                w.WriteStringValue(Pem(c.Leaf));
                foreach (var i in c.Intermediates)
                {
                    w.WriteStringValue(Pem(i));
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("connections");
            w.WriteNumber("active", tracker.Count);
            w.WriteNumber("hbonePooled", pooledConnections);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static string Pem(X509Certificate2 c) => c.ExportCertificatePem();
}
