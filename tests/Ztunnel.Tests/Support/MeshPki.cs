using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.Identity;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>
/// Certificates for test peers that are not agents (Node, openssl, nghttpx, raw TLS clients), signed by the CA an
/// agent persisted in its state directory, and written out as PEM files for tools that only read files.
/// </summary>
internal sealed class MeshPki : IDisposable
{
    private readonly CertificateAuthority _ca;

    private MeshPki(CertificateAuthority ca, string directory)
    {
        _ca = ca;
        Directory = directory;
        CaFile = Path.Combine(directory, "ca.pem");
        File.WriteAllText(CaFile, ca.Root.ExportCertificatePem());
    }

    /// <summary>Where the PEM files go; deleted on dispose.</summary>
    public string Directory { get; }

    /// <summary>The mesh trust anchor, PEM.</summary>
    public string CaFile { get; }

    public X509Certificate2 Root => _ca.Root;

    /// <summary>Opens the CA of the agent whose state lives in <paramref name="stateDir"/> (or creates a new, foreign one).</summary>
    public static MeshPki Open(string stateDir) =>
        new(CertificateAuthority.LoadOrCreate(null, null, stateDir, "cluster.local"), System.IO.Directory.CreateTempSubdirectory("ambient-pki-").FullName);

    /// <summary>A CA nobody in the mesh trusts.</summary>
    public static MeshPki Foreign()
    {
        var state = System.IO.Directory.CreateTempSubdirectory("ambient-foreign-ca-").FullName;
        try
        {
            return Open(state);
        }
        finally
        {
            System.IO.Directory.Delete(state, recursive: true);
        }
    }

    public static SpiffeId Id(string serviceAccount, string ns = "default") => new("cluster.local", ns, serviceAccount);

    public X509Certificate2 Issue(SpiffeId id) => _ca.IssueAsync(id, TimeSpan.FromHours(1), CancellationToken.None).AsTask().GetAwaiter().GetResult().Leaf;

    /// <summary>A leaf valid only in the past (or future), for expiry checks.</summary>
    public X509Certificate2 Issue(SpiffeId id, DateTimeOffset notBefore, DateTimeOffset notAfter) => _ca.Issue(id, notBefore, notAfter).Leaf;

    /// <summary>Writes the leaf and its key as <c>name.pem</c> / <c>name-key.pem</c>.</summary>
    public (string CertFile, string KeyFile) Write(string name, X509Certificate2 leaf)
    {
        var cert = Path.Combine(Directory, name + ".pem");
        var key = Path.Combine(Directory, name + "-key.pem");
        File.WriteAllText(cert, leaf.ExportCertificatePem());
        using var ec = leaf.GetECDsaPrivateKey() ?? throw new InvalidOperationException("leaf has no ECDSA private key");
        File.WriteAllText(key, ec.ExportPkcs8PrivateKeyPem());
        return (cert, key);
    }

    public void Dispose()
    {
        _ca.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
