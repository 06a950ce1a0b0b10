using System.Diagnostics;

namespace Ambient.Mesh.Tests.Identity;

/// <summary>A temporary directory removed with the test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("ambient-identity-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Runs the openssl CLI: an independent implementation to check our certificates and TLS against.</summary>
internal static class OpenSsl
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>A config with no defaults, so <c>-addext</c> decides every extension.</summary>
    public const string MinimalConfig = """
        [req]
        distinguished_name = dn
        [dn]
        [v3_ca]
        basicConstraints = critical,CA:TRUE
        keyUsage = critical,keyCertSign,cRLSign
        subjectKeyIdentifier = hash
        [v3_int]
        basicConstraints = critical,CA:TRUE,pathlen:0
        keyUsage = critical,keyCertSign,cRLSign
        subjectKeyIdentifier = hash
        authorityKeyIdentifier = keyid
        [v3_leaf]
        basicConstraints = critical,CA:FALSE
        keyUsage = critical,digitalSignature
        """;

    public static async Task<(int ExitCode, string Output)> RunAsync(string workingDirectory, string stdin, params string[] arguments)
    {
        var start = new ProcessStartInfo("openssl")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("openssl did not start");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(stdin).WaitAsync(Timeout);
        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout.WaitAsync(Timeout) + await stderr.WaitAsync(Timeout));
    }

    public static async Task<string> CheckedAsync(string workingDirectory, params string[] arguments)
    {
        (int exitCode, string output) = await RunAsync(workingDirectory, string.Empty, arguments);
        Assert.True(exitCode == 0, $"openssl {string.Join(' ', arguments)} failed ({exitCode}): {output}");
        return output;
    }

    /// <summary>Writes min.cnf and creates a self-signed EC (SEC1 key) CA as <paramref name="name"/>-cert.pem / -key.pem.</summary>
    public static async Task CreateEcRootAsync(TempDir dir, string name, string subject)
    {
        await System.IO.File.WriteAllTextAsync(dir.File("min.cnf"), MinimalConfig);
        await CheckedAsync(dir.Path, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", $"{name}-key.pem");
        await CheckedAsync(dir.Path, "req", "-x509", "-new", "-key", $"{name}-key.pem", "-subj", subject, "-days", "30",
            "-config", "min.cnf", "-extensions", "v3_ca", "-out", $"{name}-cert.pem");
    }

    /// <summary>An openssl root (root-cert.pem) and an intermediate CA under it (int-cert.pem, int-key.pem).</summary>
    public static async Task CreateIntermediateAsync(TempDir dir)
    {
        await CreateEcRootAsync(dir, "root", "/O=example.org/CN=Interop Root");
        await CheckedAsync(dir.Path, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "int-key.pem");
        await CheckedAsync(dir.Path, "req", "-new", "-key", "int-key.pem", "-subj", "/O=example.org/CN=Interop Intermediate",
            "-config", "min.cnf", "-out", "int.csr");
        await CheckedAsync(dir.Path, "x509", "-req", "-in", "int.csr", "-CA", "root-cert.pem", "-CAkey", "root-key.pem",
            "-set_serial", "4242", "-days", "30", "-extfile", "min.cnf", "-extensions", "v3_int", "-out", "int-cert.pem");
    }
}
