"""The availability zones Fargo has: those of the default network's subnets (us-east-1a, b, c), with the
zone ids AWS gives them (use1-az1, ...), and DescribeAvailabilityZones."""
from __future__ import annotations

from fargo.config import Config
from fargo.control.vpcs.filters import apply_filters


class AvailabilityZones:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.names: list[str] = sorted({s.availability_zone for s in config.network.subnets})

    def zone_id(self, zone_name: str) -> str:
        """AWS zone ids look like use1-az1: the region's initials and number, then the zone's index."""
        parts = self.config.region.split("-")
        short = parts[0][:2] + "".join(p[0] for p in parts[1:-1]) + parts[-1]
        return f"{short}-az{ord(zone_name[-1]) - ord('a') + 1}"

    def name_of_id(self, zone_id: str) -> str | None:
        return next((name for name in self.names if self.zone_id(name) == zone_id), None)

    def handlers(self) -> dict:
        return {"DescribeAvailabilityZones": self.describe_availability_zones}

    def describe_availability_zones(self, p: dict) -> dict:
        region = self.config.region
        zones = [{
            "ZoneName": name, "ZoneId": self.zone_id(name), "State": "available", "RegionName": region,
            "ZoneType": "availability-zone", "GroupName": region, "NetworkBorderGroup": region,
            "OptInStatus": "opt-in-not-required", "Messages": [],
        } for name in self.names]
        if p.get("ZoneNames"):
            zones = [z for z in zones if z["ZoneName"] in p["ZoneNames"]]
        if p.get("ZoneIds"):
            zones = [z for z in zones if z["ZoneId"] in p["ZoneIds"]]
        zones = apply_filters(zones, p.get("Filters"), {
            "zone-name": lambda z: z["ZoneName"], "zone-id": lambda z: z["ZoneId"], "state": lambda z: z["State"],
            "region-name": lambda z: z["RegionName"], "zone-type": lambda z: z["ZoneType"],
            "group-name": lambda z: z["GroupName"], "network-border-group": lambda z: z["NetworkBorderGroup"],
            "opt-in-status": lambda z: z["OptInStatus"]})
        return {"AvailabilityZones": zones}
