using Ambient.Cni;

// The runtime starts this process once per pod and command; keep it to the one call.
using var stdin = Console.OpenStandardInput();
using var stdout = Console.OpenStandardOutput();
return await Plugin.RunAsync(args, CniEnvironment.FromProcess(), stdin, stdout, Console.Error);
