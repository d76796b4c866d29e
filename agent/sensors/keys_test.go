package sensors

import (
	"context"
	"errors"
	"testing"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/internal/testkit"
)

func TestKeysOrder(t *testing.T) {
	db := openDB(t, scratchDB(t))
	register(t, db, 1, "127.0.0.1:1", nil) // creates `system`
	cfg2, sys2, def, site := mustKey(t), mustKey(t), mustKey(t), mustKey(t)
	putSystemKey(t, db, "manager_key_2", sys2)
	putSystemKey(t, db, "manager_key_3", sys2)
	putSystemKey(t, db, "manager_key", site)
	tests := []struct {
		name string
		keys *Keys
		id   int
		want *wire.AESKey
	}{
		{"nil Keys: plaintext", nil, 2, nil},
		{"config per sensor wins", &Keys{PerSensor: map[int]wire.AESKey{2: cfg2}, Default: &def, DB: db}, 2, &cfg2},
		{"system per sensor before default", &Keys{Default: &def, DB: db}, 3, &sys2},
		{"default before site row", &Keys{Default: &def, DB: db}, 4, &def},
		{"site row", &Keys{DB: db}, 4, &site},
		{"nothing: plaintext", &Keys{}, 4, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keys.For(context.Background(), tt.id, false)
			if err != nil {
				t.Fatal(err)
			}
			if !sameKey(got, tt.want) {
				t.Errorf("For(%d) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
	// The cache holds a row until reload.
	k := &Keys{DB: db}
	if got, _ := k.For(context.Background(), 5, false); !sameKey(got, &site) {
		t.Fatalf("site key not found")
	}
	newSite := mustKey(t)
	putSystemKey(t, db, "manager_key", newSite)
	if got, _ := k.For(context.Background(), 5, false); !sameKey(got, &site) {
		t.Errorf("cached key replaced without reload")
	}
	if got, _ := k.For(context.Background(), 5, true); !sameKey(got, &newSite) {
		t.Errorf("reload did not read the new row")
	}
	// A broken row is an error, not plaintext.
	if _, err := db.Exec("INSERT INTO `system` (`type`,`content`) VALUES ('manager_key_6','{\"key\":\"!!\"}')"); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Keys{DB: db}).For(context.Background(), 6, false); !errors.Is(err, wire.ErrBadKey) {
		t.Errorf("broken row: err = %v, want ErrBadKey", err)
	}
}

func TestParseSensorKey(t *testing.T) {
	k := mustKey(t)
	kb, ib := k.Base64()
	tests := []struct {
		name    string
		in      string
		wantID  int
		wantErr error
	}{
		{"ok", "2:" + kb + ":" + ib, 2, nil},
		{"spaces", " 7 : " + kb + " : " + ib + " ", 7, nil},
		{"missing iv", "2:" + kb, 0, ErrBadKeyOption},
		{"bad id", "x:" + kb + ":" + ib, 0, ErrBadKeyOption},
		{"id too big", "70000:" + kb + ":" + ib, 0, ErrBadKeyOption},
		{"short key", "2:AAAA:" + ib, 0, ErrBadKeyOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, got, err := ParseSensorKey(tt.in)
			if testkit.WantErr(t, err, tt.wantErr) {
				return
			}
			if id != tt.wantID || got != k {
				t.Errorf("got %d %v, want %d %v", id, got, tt.wantID, k)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	a, b := mustKey(t), mustKey(t)
	if KeyID(a) == KeyID(b) || KeyID(a) != KeyID(a) || len(KeyID(a)) != 12 {
		t.Errorf("KeyID: %q %q", KeyID(a), KeyID(b))
	}
}
