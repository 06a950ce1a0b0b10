using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Ambient.Mesh.Tests.Kubernetes.Api.Support;

/// <summary>
/// A cluster CA with a server certificate for 127.0.0.1 and a client certificate signed by it, as a kubeadm
/// cluster has, for the https flavour of <see cref="FakeKubeApiServer"/>.
/// </summary>
internal sealed class TestClusterPki : IDisposable
{
    public TestClusterPki()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=fake-kubernetes-ca", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        Ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));

        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        Server = Issue("CN=kube-apiserver", san.Build(), new Oid("1.3.6.1.5.5.7.3.1"), now);
        Client = Issue("CN=system:node:node-a, O=system:nodes", null, new Oid("1.3.6.1.5.5.7.3.2"), now);
    }

    public X509Certificate2 Ca { get; }

    public X509Certificate2 Server { get; }

    public X509Certificate2 Client { get; }

    private X509Certificate2 Issue(string subject, X509Extension? san, Oid usage, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([usage], false));
        if (san is not null)
        {
            request.CertificateExtensions.Add(san);
        }
        using X509Certificate2 issued = request.Create(Ca, now.AddMinutes(-5), now.AddHours(12), RandomNumberGenerator.GetBytes(8));
        return issued.CopyWithPrivateKey(key);
    }

    public static string KeyPem(X509Certificate2 cert) => cert.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem();

    public void Dispose()
    {
        Ca.Dispose();
        Server.Dispose();
        Client.Dispose();
    }
}

/// <summary>Writes kubeconfig files the way kubectl and kubeadm do.</summary>
internal static class TestKubeconfig
{
    /// <summary>
    /// A kubeconfig for <paramref name="server"/> with one context; with <paramref name="pki"/> the cluster CA
    /// (and, when <paramref name="clientCertificate"/>, the client certificate and key) inline as base64 PEM.
    /// </summary>
    public static string Write(string directory, Uri server, TestClusterPki? pki = null, bool clientCertificate = false, string? token = null)
    {
        var yaml = new StringBuilder();
        yaml.AppendLine("apiVersion: v1");
        yaml.AppendLine("kind: Config");
        yaml.AppendLine("clusters:");
        yaml.AppendLine("- name: fake");
        yaml.AppendLine("  cluster:");
        yaml.AppendLine($"    server: {server.GetLeftPart(UriPartial.Authority)}");
        if (pki is not null)
        {
            yaml.AppendLine($"    certificate-authority-data: {Base64(pki.Ca.ExportCertificatePem())}");
        }
        bool certificate = pki is not null && clientCertificate;
        bool credentials = certificate || token is not null;
        if (credentials)
        {
            yaml.AppendLine("users:");
            yaml.AppendLine("- name: agent");
            yaml.AppendLine("  user:");
            if (certificate)
            {
                yaml.AppendLine($"    client-certificate-data: {Base64(pki!.Client.ExportCertificatePem())}");
                yaml.AppendLine($"    client-key-data: {Base64(TestClusterPki.KeyPem(pki.Client))}");
            }
            if (token is not null)
            {
                yaml.AppendLine($"    token: {token}");
            }
        }
        yaml.AppendLine("contexts:");
        yaml.AppendLine("- name: fake");
        yaml.AppendLine("  context:");
        yaml.AppendLine("    cluster: fake");
        if (credentials)
        {
            // Without credentials the context names no user (as for a server behind kubectl proxy).
            yaml.AppendLine("    user: agent");
        }
        yaml.AppendLine("current-context: fake");
        string path = Path.Combine(directory, $"kubeconfig-{Guid.NewGuid():N}");
        File.WriteAllText(path, yaml.ToString());
        return path;
    }

    private static string Base64(string pem) => Convert.ToBase64String(Encoding.UTF8.GetBytes(pem));
}
