package cluster

import "math"

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
