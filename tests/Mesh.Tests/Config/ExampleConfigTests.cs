using Ambient.Mesh.Config;

namespace Ambient.Mesh.Tests.Config;

public sealed class ExampleConfigTests
{
    private static string ExamplePath()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "mesh", "Config", "example-config.yaml");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException("mesh/Config/example-config.yaml not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void ExampleConfigLoadsWithoutErrorsOrWarnings()
    {
        ConfigLoadResult result = ConfigLoader.LoadFile(ExamplePath());
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Empty(result.Warnings);
        MeshConfig c = result.Config!;
        Assert.Equal(2, c.Workloads.Length);
        Assert.Equal(3, c.Services.Length);
        Assert.Equal(2, c.Policies.Length);
        Assert.Equal(5, c.Policies[0].Rules[0].Clauses[0].Matches[0].Principals.Length);
        // The defaults written out in the example are the defaults of the model.
        var defaults = new MeshConfig();
        Assert.Equal(defaults.Listeners, c.Listeners);
        Assert.Equal(defaults.CertificateLifetime, c.CertificateLifetime);
        Assert.Equal(defaults.DrainTimeout, c.DrainTimeout);
        Assert.Equal(defaults.HboneIdleTimeout, c.HboneIdleTimeout);
        Assert.Equal(defaults.TrustDomain, c.TrustDomain);
        Assert.Equal(defaults.Mode, c.Mode);
        Assert.Equal(defaults.AccessLog, c.AccessLog);
    }
}
