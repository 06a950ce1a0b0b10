using System.Collections.Immutable;

namespace Ambient.Mesh.Model;

/// <summary>PeerAuthentication mTLS modes (security.istio.io PeerAuthentication.MutualTLS.Mode).</summary>
public enum MtlsMode
{
    /// <summary>Inherit from the parent policy (namespace, then mesh-wide); PERMISSIVE when nothing is set.</summary>
    Unset,
    /// <summary>Plaintext accepted (in ambient, HBONE is still mTLS; DISABLE only allows plaintext too).</summary>
    Disable,
    /// <summary>Both plaintext and mTLS accepted (Istio's default).</summary>
    Permissive,
    /// <summary>Only mTLS (HBONE) accepted: plaintext inbound is refused.</summary>
    Strict,
}

/// <summary>
/// An Istio <c>security.istio.io</c> PeerAuthentication: whether a workload accepts plaintext. In ambient only the
/// plaintext question matters (HBONE is always mTLS); see <see cref="PeerAuthenticationSet"/> for the effective mode.
/// </summary>
public sealed record PeerAuthentication : MeshObject
{
    public override string Kind => "PeerAuthentication";

    /// <summary><c>selector.matchLabels</c>; null (or empty) for a namespace-wide policy, or mesh-wide in the root namespace.</summary>
    public ImmutableDictionary<string, string>? Selector { get; init; }

    public MtlsMode Mode { get; init; } = MtlsMode.Unset;

    /// <summary>Per workload port (the container port, not a service port); only valid with a selector.</summary>
    public ImmutableDictionary<int, MtlsMode> PortLevelMtls { get; init; } = ImmutableDictionary<int, MtlsMode>.Empty;

    /// <summary>metadata.creationTimestamp: when several policies of one level apply, Istio takes the oldest.</summary>
    public DateTimeOffset? CreationTimestamp { get; init; }

    public bool HasSelector => Selector is { Count: > 0 };
}

/// <summary>The answer of <see cref="PeerAuthenticationSet.PlaintextAllowed"/>, with the policy that decided (null: the default).</summary>
public readonly record struct PlaintextDecision(bool Allowed, MtlsMode EffectiveMode, string? PolicyKey)
{
    /// <summary>For a log line when plaintext is refused: "STRICT mTLS (PeerAuthentication shop/strict)".</summary>
    public string Describe() => PolicyKey is null
        ? $"{EffectiveMode.ToString().ToUpperInvariant()} mTLS (default)"
        : $"{EffectiveMode.ToString().ToUpperInvariant()} mTLS ({PolicyKey})";
}

/// <summary>
/// The PeerAuthentication policies of a mesh, indexed to answer "may this workload receive plaintext on this
/// port?" with Istio's precedence: a workload-selector policy in the workload's namespace, then the
/// namespace-wide policy, then the mesh-wide policy of the root namespace; <see cref="MtlsMode.Unset"/> at one
/// level inherits from the next; the oldest policy wins a tie within a level (as istiod does); nothing set means
/// PERMISSIVE. Port-level modes come only from the workload-selector policy and name the workload's port.
/// Immutable; build a new one when the policies change.
/// </summary>
public sealed class PeerAuthenticationSet
{
    private readonly string _rootNamespace;
    private readonly PeerAuthentication? _meshWide;
    private readonly Dictionary<string, PeerAuthentication> _namespaceWide = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<PeerAuthentication>> _withSelector = new(StringComparer.Ordinal);

    public PeerAuthenticationSet(IEnumerable<PeerAuthentication> policies, string rootNamespace = "istio-system")
    {
        _rootNamespace = rootNamespace;
        foreach (PeerAuthentication p in policies)
        {
            if (!p.HasSelector)
            {
                if (p.Namespace == rootNamespace)
                {
                    _meshWide = Older(_meshWide, p);
                }
                else
                {
                    _namespaceWide[p.Namespace] = Older(_namespaceWide.GetValueOrDefault(p.Namespace), p);
                }
            }
            else if (p.Namespace != rootNamespace)
            {
                // Istio ignores selector policies in the root namespace for workloads elsewhere.
                if (!_withSelector.TryGetValue(p.Namespace, out List<PeerAuthentication>? list))
                {
                    _withSelector[p.Namespace] = list = [];
                }
                list.Add(p);
            }
        }
    }

    public static PeerAuthenticationSet Empty { get; } = new([]);

    public string RootNamespace => _rootNamespace;

    /// <summary>Whether <paramref name="destination"/> accepts plaintext (not HBONE) on <paramref name="port"/> (its own port).</summary>
    public PlaintextDecision PlaintextAllowed(Workload destination, int port)
    {
        MtlsMode mode = MtlsMode.Unset;
        string? key = null;
        if (_meshWide is { Mode: not MtlsMode.Unset } mesh)
        {
            (mode, key) = (mesh.Mode, mesh.Key);
        }
        if (_namespaceWide.GetValueOrDefault(destination.Namespace) is { Mode: not MtlsMode.Unset } ns)
        {
            (mode, key) = (ns.Mode, ns.Key);
        }
        if (SelectorPolicy(destination) is { } w)
        {
            if (w.PortLevelMtls.TryGetValue(port, out MtlsMode portMode) && portMode != MtlsMode.Unset)
            {
                (mode, key) = (portMode, w.Key);
            }
            else if (w.Mode != MtlsMode.Unset)
            {
                (mode, key) = (w.Mode, w.Key);
            }
        }
        if (mode == MtlsMode.Unset)
        {
            mode = MtlsMode.Permissive;
        }
        return new PlaintextDecision(mode != MtlsMode.Strict, mode, key);
    }

    private PeerAuthentication? SelectorPolicy(Workload w)
    {
        if (!_withSelector.TryGetValue(w.Namespace, out List<PeerAuthentication>? list))
        {
            return null;
        }
        PeerAuthentication? chosen = null;
        foreach (PeerAuthentication p in list)
        {
            if (Selects(p.Selector!, w.Labels))
            {
                chosen = Older(chosen, p);
            }
        }
        return chosen;
    }

    private static bool Selects(ImmutableDictionary<string, string> selector, ImmutableDictionary<string, string> labels)
    {
        foreach (KeyValuePair<string, string> kv in selector)
        {
            if (!labels.TryGetValue(kv.Key, out string? v) || v != kv.Value)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The older of two policies; without timestamps, the first by name (deterministic, like a stable sort).</summary>
    private static PeerAuthentication Older(PeerAuthentication? current, PeerAuthentication candidate)
    {
        if (current is null)
        {
            return candidate;
        }
        DateTimeOffset a = current.CreationTimestamp ?? DateTimeOffset.MaxValue;
        DateTimeOffset b = candidate.CreationTimestamp ?? DateTimeOffset.MaxValue;
        if (b != a)
        {
            return b < a ? candidate : current;
        }
        return string.CompareOrdinal(candidate.Name, current.Name) < 0 ? candidate : current;
    }
}
