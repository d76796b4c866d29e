package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Check loads the config like Load and then verifies what can be verified
// without starting anything: files it names are readable and directories it
// writes to are writable (or creatable). It is `pbx-agent check-config`.
// It returns the loaded config (nil when it does not parse) and every problem.
func Check(path string, flags map[string]string) (*Config, error) {
	c, err := Load(path, flags)
	if err != nil {
		return nil, err
	}
	var errs []error
	fail := func(key, msg, hint string) {
		f, l := c.where(key)
		errs = append(errs, &Error{File: f, Line: l, Key: key, Err: ErrCheck, Msg: msg, Hint: hint})
	}
	if err := writableDir(c.SpoolDir); err != nil {
		fail("spooldir", err.Error(), "create it or choose another spooldir")
	}
	if c.DatabaseEnabled() {
		if err := writableDir(c.QueueDir()); err != nil {
			fail("cdr_queue_dir", err.Error(), "the on-disk CDR queue needs a writable directory")
		}
	}
	// The daemon starts without manager.conf (no AMI, no manager.conf web
	// users) and says so: check-config warns the same instead of failing.
	if c.AMIUser == "" && c.AsteriskManagerConf != "" {
		if err := readable(c.AsteriskManagerConf); err != nil {
			f, l := c.where("asterisk_manager_conf")
			c.Warnings = append(c.Warnings, (&Error{File: f, Line: l, Key: "asterisk_manager_conf", Msg: err.Error() +
				"; Asterisk channels are not followed and manager.conf users cannot log in",
				Hint: "set ami_user/ami_secret, or point asterisk_manager_conf at a readable file"}).Error())
		}
	}
	if c.UsersFile != "" {
		if err := readable(c.UsersFile); err != nil {
			fail("users_file", err.Error(), "")
		}
	}
	if c.HTTPTLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.HTTPTLSCert, c.HTTPTLSKey); err != nil {
			fail("http_tls_cert", err.Error(), "both must be PEM files of one key pair")
		}
	}
	if c.ManagerSocket != "" {
		if err := writableDir(filepath.Dir(c.ManagerSocket)); err != nil {
			fail("managersocket", err.Error(), "the socket's directory must exist and be writable")
		}
	}
	return c, errors.Join(errs...)
}

func (c *Config) where(key string) (string, int) {
	s, ok := c.Source[key]
	if !ok {
		return "default", 0
	}
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == ':' {
			var n int
			if _, err := fmt.Sscanf(s[i+1:], "%d", &n); err == nil {
				return s[:i], n
			}
			break
		}
	}
	return s, 0
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// writableDir checks that dir exists and is writable, or that its nearest
// existing parent is (so the agent can create it).
func writableDir(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			f, err := os.CreateTemp(d, ".pbx-agent-check-*")
			if err != nil {
				return fmt.Errorf("%s is not writable: %w", d, err)
			}
			name := f.Name()
			f.Close()
			return os.Remove(name)
		}
		if !errors.Is(err, os.ErrNotExist) || filepath.Dir(d) == d {
			return err
		}
	}
}
