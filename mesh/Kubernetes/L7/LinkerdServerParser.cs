using System.Globalization;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

/// <summary>
/// Reads policy.linkerd.io Server (v1beta1 to v1beta3 share these fields): <c>podSelector</c> and <c>port</c>, the
/// parts a rate-limit policy's target needs. <c>proxyProtocol</c> and <c>accessPolicy</c> are accepted and not used
/// (the waypoint speaks whatever the request is, and authorization is Istio's AuthorizationPolicy here).
/// </summary>
internal sealed class LinkerdServerParser(SpecReader s)
{
    private static readonly string[] SpecKeys = ["podSelector", "externalWorkloadSelector", "port", "proxyProtocol", "accessPolicy"];
    private static readonly string[] SelectorKeys = ["matchLabels", "matchExpressions"];
    private static readonly string[] ProxyProtocols = ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"];

    public LinkerdServer? Parse(YamlNode spec, string path, string ns, string name)
    {
        var server = new LinkerdServer { Namespace = ns, Name = name };
        bool ok = s.Require(spec, path, "podSelector", "the pods this server is on (matchLabels)");
        ok &= s.Require(spec, path, "port", "the port, by number or container port name");
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(spec, path))
        {
            switch (key)
            {
                case "podSelector":
                    foreach ((YamlScalarNode sk, string skey, YamlNode sv, string sp) in s.Fields(v, p))
                    {
                        switch (skey)
                        {
                            case "matchLabels":
                                server = server with { PodSelector = s.StringMap(sv, sp) };
                                break;
                            case "matchExpressions":
                                s.Error(sv, sp, "matchExpressions is not supported yet; select the pods with matchLabels");
                                ok = false;
                                break;
                            default:
                                s.Unknown(sk, p, SelectorKeys);
                                break;
                        }
                    }
                    break;
                case "externalWorkloadSelector":
                    s.Error(v, p, "externalWorkloadSelector is not supported (the mesh has no ExternalWorkload); use podSelector");
                    ok = false;
                    break;
                case "port":
                    if (v is YamlScalarNode scalar && int.TryParse(scalar.Value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                    {
                        server = server with { PortNumber = s.Int(v, p, 1, 65535) };
                        ok &= server.PortNumber is not null;
                    }
                    else
                    {
                        // The mesh model does not keep container port names, so a named port could not be matched:
                        // refusing it says so instead of a limit that silently never applies.
                        s.Error(v, p, "a named port is not supported yet; give the container port's number");
                        ok = false;
                    }
                    break;
                case "proxyProtocol":
                    s.OneOf(v, p, ProxyProtocols);
                    break;
                case "accessPolicy":
                    s.String(v, p);
                    break;
                default:
                    s.Unknown(k, path, SpecKeys);
                    break;
            }
        }
        return ok ? server : null;
    }
}
