using System.Diagnostics.CodeAnalysis;

namespace Ambient.Mesh.Identity;

/// <summary>A workload identity <c>spiffe://trust-domain/ns/NAMESPACE/sa/SERVICE_ACCOUNT</c>.</summary>
public readonly record struct SpiffeId(string TrustDomain, string Namespace, string ServiceAccount)
{
    public override string ToString() => throw new NotImplementedException();

    /// <summary>The principal as Istio's policies name it: the id without <c>spiffe://</c>.</summary>
    public string Principal => throw new NotImplementedException();

    public static bool TryParse(string? uri, [NotNullWhen(true)] out SpiffeId? id) => throw new NotImplementedException();
}
