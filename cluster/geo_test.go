package cluster_test

import (
	"math"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/cluster"
)

func pos(lat, lon float64) cluster.Position {
	return cluster.Position{Lat: int64(math.Round(lat * 1e6)), Lon: int64(math.Round(lon * 1e6))}
}

// TestCentralAngle checks the great-circle angle against values published
// elsewhere or exact by geometry.
func TestCentralAngle(t *testing.T) {
	tests := []struct {
		name string
		a, b cluster.Position
		want float64 // radians
		tol  float64
	}{
		{"same point", pos(48.8566, 2.3522), pos(48.8566, 2.3522), 0, 0},
		{"antipodes on the equator", pos(0, 0), pos(0, 180), math.Pi, 1e-12},
		{"antipodes off the equator", pos(37.5, -122.25), pos(-37.5, 57.75), math.Pi, 1e-6},
		{"pole to pole", pos(90, 0), pos(-90, 0), math.Pi, 1e-12},
		{"pole to equator", pos(90, 45), pos(0, -30), math.Pi / 2, 1e-12},
		{"all longitudes meet at a pole", pos(90, 0), pos(90, 123), 0, 1e-12},
		{"across the date line", pos(0, 179.5), pos(0, -179.5), math.Pi / 180, 1e-12},
		{"quarter of the equator", pos(0, -45), pos(0, 45), math.Pi / 2, 1e-12},
		// Rosetta Code "Haversine formula": Nashville BNA (36.12, -86.67) to
		// Los Angeles LAX (33.94, -118.40) is 2887.2599506071106 km on a
		// sphere of radius 6372.8 km.
		{"BNA to LAX", pos(36.12, -86.67), pos(33.94, -118.40), 2887.2599506071106 / 6372.8, 1e-12},
		// One microdegree of latitude, the wire's resolution.
		{"one microdegree", pos(10, 10), cluster.Position{Lat: 10_000_001, Lon: 10_000_000}, 1e-6 * math.Pi / 180, 1e-15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cluster.CentralAngle(tt.a, tt.b)
			if math.Abs(got-tt.want) > tt.tol {
				t.Errorf("CentralAngle(%v, %v) = %.15g, want %.15g", tt.a, tt.b, got, tt.want)
			}
			if back := cluster.CentralAngle(tt.b, tt.a); math.Abs(back-got) > 1e-15 {
				t.Errorf("not symmetric: %.15g vs %.15g", got, back)
			}
		})
	}
}

// TestDistance: metres on the IUGG mean-radius sphere, east-west distances
// shrinking with the cosine of the latitude.
func TestDistance(t *testing.T) {
	const deg = cluster.EarthRadius * math.Pi / 180 // 111 195.08 m
	tests := []struct {
		name string
		a, b cluster.Position
		want float64
		tol  float64
	}{
		{"one degree of latitude", pos(0, 0), pos(1, 0), deg, 1e-6},
		{"one degree of longitude at the equator", pos(0, 0), pos(0, 1), deg, 1e-6},
		{"one degree of longitude at 60°", pos(60, 0), pos(60, 1), deg / 2, 1},       // cos 60° = 1/2 (the chord of the small circle)
		{"one degree of longitude at 89°", pos(89, 0), pos(89, 1), deg * 0.01745, 1}, // cos 89° ≈ 0.01745
		{"half the circumference", pos(0, 0), pos(0, 180), math.Pi * cluster.EarthRadius, 1e-6},
		{"one metre north", pos(48.8566, 2.3522), cluster.Position{Lat: 48_856_609, Lon: 2_352_200}, 9 * deg * 1e-6, 1e-6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cluster.Distance(tt.a, tt.b); math.Abs(got-tt.want) > tt.tol {
				t.Errorf("Distance = %.6f m, want %.6f m", got, tt.want)
			}
		})
	}
}

// TestRadiusExtremes: a radius of a few metres and one of half the earth.
func TestRadiusExtremes(t *testing.T) {
	tiny := newEnv(t, func(c *cluster.Config) { c.Radius = 2 })
	if _, err := tiny.device("a").join(metresNorth(here, 1.5)); err != nil {
		t.Errorf("1.5 m inside a 2 m radius: %v", err)
	}
	if _, err := tiny.device("b").join(metresNorth(here, 3)); err == nil {
		t.Error("3 m outside a 2 m radius admitted")
	}
	huge := newEnv(t, func(c *cluster.Config) { c.Radius = math.Pi * cluster.EarthRadius })
	antipode := cluster.Position{Lat: -here.Lat, Lon: here.Lon - 180_000_000}
	if _, err := huge.device("c").join(antipode); err != nil {
		t.Errorf("the antipode inside a half-circumference radius: %v", err)
	}
	if _, err := cluster.New(cluster.Config{ID: "x", Radius: 0}, nil, nil); err == nil {
		t.Error("a zero radius was accepted")
	}
}

func TestParsePosition(t *testing.T) {
	for in, want := range map[string]cluster.Position{
		"48.8566,2.3522":   {Lat: 48_856_600, Lon: 2_352_200},
		" -33.9, 151.2 ":   {Lat: -33_900_000, Lon: 151_200_000},
		"90,-180":          {Lat: 90_000_000, Lon: -180_000_000},
		"0.0000005,0":      {Lat: 1, Lon: 0},
		"-0.0000004,1e-6":  {Lat: 0, Lon: 1},
		"-90,180":          {Lat: -90_000_000, Lon: 180_000_000},
		"12.3456789,45.67": {Lat: 12_345_679, Lon: 45_670_000},
	} {
		got, err := cluster.ParsePosition(in)
		if err != nil || got != want {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "48.8", "48.8;2.3", "north,east", "90.000001,0", "0,180.5", "-91,0"} {
		if _, err := cluster.ParsePosition(in); err == nil || !strings.Contains(err.Error(), "failed to parse position") {
			t.Errorf("ParsePosition(%q) = %v, want an error", in, err)
		}
	}
	if s := (cluster.Position{Lat: -33_900_000, Lon: 151_200_001}).String(); s != "-33.900000,151.200001" {
		t.Errorf("String = %q", s)
	}
}
