package cluster

import (
	"fmt"
	"math"
	"strings"
)

// EarthRadius is the mean Earth radius in metres (IUGG), the sphere on which
// distances are measured (docs/PROTOCOL.md §3.2).
const EarthRadius = 6_371_008.8

// Position is a point in microdegrees, as on the wire.
type Position struct{ Lat, Lon int64 }

func radians(micro int64) float64 { return float64(micro) / 1e6 * math.Pi / 180 }

// CentralAngle returns the great-circle angular distance between a and b in
// radians, by the haversine formula (well-conditioned for small distances).
func CentralAngle(a, b Position) float64 {
	φ1, φ2 := radians(a.Lat), radians(b.Lat)
	dφ, dλ := φ2-φ1, radians(b.Lon-a.Lon)
	h := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	return 2 * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Distance returns the great-circle distance between a and b in metres.
func Distance(a, b Position) float64 { return CentralAngle(a, b) * EarthRadius }

// ParsePosition parses "LAT,LON" in decimal degrees.
func ParsePosition(s string) (Position, error) {
	var lat, lon float64
	if _, err := fmt.Sscanf(strings.ReplaceAll(s, " ", ""), "%g,%g", &lat, &lon); err != nil {
		return Position{}, fmt.Errorf("failed to parse position %q: want LAT,LON in degrees, e.g. 48.8566,2.3522", s)
	}
	if math.Abs(lat) > 90 || math.Abs(lon) > 180 {
		return Position{}, fmt.Errorf("failed to parse position %q: latitude must be within ±90 and longitude within ±180", s)
	}
	return Position{Lat: int64(math.Round(lat * 1e6)), Lon: int64(math.Round(lon * 1e6))}, nil
}

// String renders p as "LAT,LON" in degrees.
func (p Position) String() string {
	return fmt.Sprintf("%.6f,%.6f", float64(p.Lat)/1e6, float64(p.Lon)/1e6)
}
