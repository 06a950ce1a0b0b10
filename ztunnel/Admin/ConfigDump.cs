using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Ambient.Mesh.Config;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;
using Ambient.Ztunnel.Proxy;

namespace Ambient.Ztunnel.Admin;

/// <summary>The <c>/config_dump</c> document: the live state as the agent sees it. Certificates, never private keys.</summary>
internal static class ConfigDump
{
    public static string Render(
        MeshSnapshot snapshot,
        AgentSettings settings,
        IReadOnlyList<SourceStatus> sources,
        string node,
        IReadOnlyList<WorkloadCertificate> certificates,
        ConnectionTracker tracker,
        int pooledConnections,
        Func<Mesh.Model.Workload, bool> isLocal)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("node", node);
            w.WriteNumber("configVersion", snapshot.Version);
            w.WriteString("trustDomain", settings.TrustDomain);
            w.WriteString("mode", settings.Mode.ToString().ToLowerInvariant());
            WriteSources(w, sources);
            w.WriteStartArray("workloads");
            foreach (var wl in snapshot.Workloads.OrderBy(x => x.Namespace, StringComparer.Ordinal).ThenBy(x => x.Name, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("uid", wl.Uid);
                w.WriteString("name", wl.Name);
                w.WriteString("namespace", wl.Namespace);
                w.WriteString("serviceAccount", wl.ServiceAccount);
                w.WriteString("identity", wl.SpiffeId(settings.TrustDomain));
                w.WriteString("source", snapshot.OriginOf(MeshSnapshot.OriginKey("workload", wl.Uid)));
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
            foreach (var svc in snapshot.Services.OrderBy(x => x.Key, StringComparer.Ordinal))
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
                w.WriteString("source", snapshot.OriginOf(MeshSnapshot.OriginKey("service", svc.Key)));
                if (svc.Waypoint is { } wp)
                {
                    w.WriteString("waypoint", wp.Hostname is { } h ? $"{wp.Namespace}/{h}" : $"{wp.Network}/{wp.Address}");
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("policies");
            foreach (var p in snapshot.Policies.OrderBy(x => x.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("name", p.Name);
                w.WriteString("namespace", p.Namespace);
                w.WriteString("scope", p.Scope.ToString());
                w.WriteString("action", p.Action.ToString());
                w.WriteBoolean("dryRun", p.DryRun);
                w.WriteNumber("rules", p.Rules.Length);
                w.WriteString("source", snapshot.OriginOf(MeshSnapshot.OriginKey("policy", p.Key)));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("objects");
            foreach (var o in snapshot.Objects.OrderBy(x => x.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("kind", o.Kind);
                w.WriteString("namespace", o.Namespace);
                w.WriteString("name", o.Name);
                w.WriteString("source", snapshot.OriginOf(MeshSnapshot.OriginKey("object", o.Key)));
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

    private static void WriteSources(Utf8JsonWriter w, IReadOnlyList<SourceStatus> sources)
    {
        w.WriteStartArray("sources");
        foreach (var s in sources)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteNumber("precedence", s.Precedence);
            w.WriteBoolean("synced", s.Synced);
            if (s.LastSync is { } sync)
            {
                w.WriteString("lastSync", sync);
            }
            if (s.LastChange is { } change)
            {
                w.WriteString("lastChange", change);
            }
            w.WriteStartObject("counts");
            w.WriteNumber("workloads", s.Workloads);
            w.WriteNumber("services", s.Services);
            w.WriteNumber("policies", s.Policies);
            w.WriteNumber("objects", s.Objects);
            w.WriteNumber("shadowed", s.Shadowed);
            w.WriteEndObject();
            if (s.LastError is { } error)
            {
                w.WriteString("lastError", error);
                if (s.LastErrorAt is { } at)
                {
                    w.WriteString("lastErrorAt", at);
                }
                w.WriteStartArray("errors");
                foreach (var e in s.Errors)
                {
                    w.WriteStringValue(e);
                }
                w.WriteEndArray();
            }
            if (!s.Conflicts.IsEmpty)
            {
                // Keys another source (higher precedence, or added first on a tie) also publishes: this source's entry is not used.
                w.WriteStartArray("conflicts");
                foreach (var c in s.Conflicts)
                {
                    w.WriteStringValue(c);
                }
                w.WriteEndArray();
            }
            if (!s.Refused.IsEmpty)
            {
                w.WriteStartArray("refused");
                foreach (var r in s.Refused)
                {
                    w.WriteStringValue(r);
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static string Pem(X509Certificate2 c) => c.ExportCertificatePem();
}
