using System.Text;
using System.Text.Json;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;
using Ambient.Waypoint.Authorization;
using Ambient.Waypoint.Hbone;
using Ambient.Waypoint.Routing;

namespace Ambient.Waypoint.Admin;

/// <summary>
/// The waypoint's <c>/config_dump</c>: which Gateway it serves, the services that use it, and per service the routes
/// and authorization policies in force, each with the source it came from (file, Kubernetes...).
/// </summary>
internal static class ConfigDump
{
    public static string Render(MeshSnapshot snapshot, WaypointIdentity me, IReadOnlyList<SourceStatus> sources)
    {
        var index = RouteIndex.For(snapshot);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("gateway", $"{me.Namespace}/{me.Name}");
            w.WriteString("identity", me.Id.ToString());
            w.WriteNumber("configVersion", snapshot.Version);
            w.WriteStartArray("sources");
            foreach (var s in sources)
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteBoolean("synced", s.Synced);
                w.WriteNumber("objects", s.Objects);
                w.WriteString("lastError", s.LastError);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("gatewayPolicies");
            foreach (var p in L7Authorizer.Applicable(snapshot, me, null))
            {
                WritePolicy(w, snapshot, p);
            }
            w.WriteEndArray();
            w.WriteStartArray("services");
            foreach (var svc in snapshot.Services.Where(s => me.IsMe(snapshot, s.Waypoint)).OrderBy(s => s.Hostname, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("hostname", svc.Hostname);
                w.WriteStartArray("vips");
                foreach (var v in svc.Vips)
                {
                    w.WriteStringValue(v.Address.ToString());
                }
                w.WriteEndArray();
                w.WriteStartArray("ports");
                foreach (var port in svc.Ports.Keys.Order())
                {
                    w.WriteStartObject();
                    w.WriteNumber("port", port);
                    var httpRoutes = index.HttpRoutesFor(svc, port);
                    w.WriteStartArray("httpRoutes");
                    foreach (var r in httpRoutes)
                    {
                        // GRPCRoutes are listed here too: they share the HTTPRoutes' table (Routing/GrpcRoutes).
                        WriteObject(w, snapshot, index.Original(r));
                    }
                    w.WriteEndArray();
                    // VirtualServices apply only where no HTTPRoute does (HTTPRoute wins for the same service).
                    w.WriteStartArray("virtualServices");
                    if (httpRoutes.Count == 0)
                    {
                        foreach (var vs in index.VirtualServicesFor(svc))
                        {
                            WriteObject(w, snapshot, vs);
                        }
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                if (index.DestinationRuleFor(svc) is { } dr)
                {
                    w.WritePropertyName("destinationRule");
                    WriteObject(w, snapshot, dr);
                }
                w.WriteStartArray("authorizationPolicies");
                foreach (var p in L7Authorizer.Applicable(snapshot, me, svc))
                {
                    WritePolicy(w, snapshot, p);
                }
                w.WriteEndArray();
                w.WriteNumber("endpoints", snapshot.EndpointsOf(svc).Count);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteObject(Utf8JsonWriter w, MeshSnapshot snapshot, MeshObject o)
    {
        w.WriteStartObject();
        w.WriteString("kind", o.Kind);
        w.WriteString("name", $"{o.Namespace}/{o.Name}");
        w.WriteString("source", snapshot.OriginOf(MeshSnapshot.OriginKey("object", o.Key)));
        switch (o)
        {
            case HttpRoute r:
                w.WriteNumber("rules", r.Rules.Length);
                break;
            case GrpcRoute g:
                w.WriteNumber("rules", g.Rules.Length);
                break;
            case VirtualService vs:
                w.WriteNumber("httpRoutes", vs.Http.Length);
                break;
            case DestinationRule dr:
                w.WriteString("loadBalancer", dr.TrafficPolicy?.LoadBalancer?.ConsistentHash is not null ? "consistentHash" : (dr.TrafficPolicy?.LoadBalancer?.Simple ?? SimpleLoadBalancer.LeastRequest).ToString());
                w.WriteStartArray("subsets");
                foreach (var s in dr.Subsets)
                {
                    w.WriteStringValue(s.Name);
                }
                w.WriteEndArray();
                break;
        }
        w.WriteEndObject();
    }

    private static void WritePolicy(Utf8JsonWriter w, MeshSnapshot snapshot, IstioAuthorizationPolicy p)
    {
        w.WriteStartObject();
        w.WriteString("name", $"{p.Namespace}/{p.Name}");
        w.WriteString("action", p.Action.ToString().ToUpperInvariant());
        w.WriteBoolean("dryRun", p.DryRun);
        w.WriteNumber("rules", p.Rules.Length);
        w.WriteString("source", snapshot.OriginOf(MeshSnapshot.OriginKey("object", p.Key)));
        w.WriteEndObject();
    }
}
