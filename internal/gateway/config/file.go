package config

// ConfigMapKey is the key of the rendered file in the gateway's ConfigMap; mount the ConfigMap
// so that it appears at DefaultConfigPath.
const ConfigMapKey = "config.json"

// ValidateFile validates everything but the secrets (which only the gateway's environment has),
// and computes the routes' atomic amounts: what a renderer of the file checks before writing it.
func (c *Config) ValidateFile() error {
	probe := *c
	// Placeholders that pass the secret checks, so that only file errors remain.
	probe.Secrets = Secrets{
		DatabaseURL: "postgres://placeholder/db", OKXAPIKey: "x", OKXSecretKey: "x", OKXPassphrase: "x",
		RelayerKey: "0x0000000000000000000000000000000000000000000000000000000000000001",
	}
	if err := probe.Validate(); err != nil {
		return err
	}
	c.Routes = probe.Routes // amounts computed
	return nil
}
