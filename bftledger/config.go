package bftledger

import (
	"fmt"
	"path/filepath"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/spf13/viper"
)

// LoadConfig reads HOME/config/config.toml the way the cometbft command does
// (defaults for what the file leaves out) and roots the result at home.
func LoadConfig(home string) (*cfg.Config, error) {
	conf := cfg.DefaultConfig()
	v := viper.New()
	v.SetConfigFile(filepath.Join(home, "config", "config.toml"))
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("failed to read CometBFT config in %s: %w", home, err)
	}
	if err := v.Unmarshal(conf); err != nil {
		return nil, fmt.Errorf("failed to parse CometBFT config in %s: %w", home, err)
	}
	conf.SetRoot(home)
	if err := conf.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("invalid CometBFT config in %s: %w", home, err)
	}
	return conf, nil
}
