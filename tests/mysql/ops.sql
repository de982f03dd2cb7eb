-- Gazelle "ops" schema (the Orpheus/OPS generation): the tables hayate reads and writes.
--
-- Column lists, types, defaults and indexes follow OPSnet/Gazelle: the schema dump in
-- db/data/gazelle.sql (2020) brought forward with the later Phinx migrations under
-- db/migrations/ that touch these tables: the leech-stats split (credit in
-- users_leech_stats, swarm counts in torrents_leech_stats), the unused-index cleanup,
-- IndexXbtFilesUsers (xbt_files_users keyed by fid, uid, peer_id), FinalTablePks
-- (xbt_snatched gets an AUTO_INCREMENT key) and the utf8mb4 collation pass (users_main
-- Enabled and Visible enums, auth_key, torrents.Media and FileList). OPS's Ocelot is
-- OPSnet/Ocelot (src/db.cpp). Differences from the classic file:
--   users_main has no Uploaded/Downloaded, its Enabled and Visible enums carry extra
--   word values ('enabled', 'yes', ...) beside the digits Ocelot compares against,
--   torrents has no Seeders/Leechers/Snatched/balance/last_action,
--   users_freeleeches has no Time index, xbt_snatched has seedtime and an id key.
-- NOT NULL columns without a default are kept as the site has them (users_main.Username,
-- Email, PassHash, PermissionID, torrent_pass, auth_key, torrents.GroupID, info_hash,
-- FileCount, FileList, Size, users_freeleeches.Time, xbt_snatched.tstamp, fid, IP).
-- OPS runs MySQL 8 with utf8mb4_0900_ai_ci, which MariaDB 10.11 lacks: these tables take
-- the server's default utf8mb4 collation. Foreign keys (users_leech_stats and
-- torrents_leech_stats reference users_main and torrents on the site), sample data,
-- CREATE DATABASE and USE are left out on purpose.

CREATE TABLE `users_main` (
  `ID` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `Username` varchar(20) NOT NULL,
  `Email` varchar(255) NOT NULL,
  `PassHash` varchar(60) NOT NULL,
  `IRCKey` char(32) DEFAULT NULL,
  `IP` varchar(15) NOT NULL DEFAULT '0.0.0.0',
  `Class` tinyint(2) NOT NULL DEFAULT 5,
  `title` varchar(1024) DEFAULT NULL,
  `Enabled` enum('0','1','2','unconfirmed','enabled','disabled','banned') NOT NULL DEFAULT '0',
  `Paranoia` mediumtext DEFAULT NULL,
  `Visible` enum('0','1','yes','no') NOT NULL DEFAULT '1',
  `Invites` int(10) unsigned NOT NULL DEFAULT 0,
  `PermissionID` int(10) unsigned NOT NULL,
  `CustomPermissions` mediumtext DEFAULT NULL,
  `can_leech` tinyint(4) NOT NULL DEFAULT 1,
  `torrent_pass` char(32) NOT NULL,
  `RequiredRatio` double NOT NULL DEFAULT 0,
  `ipcc` varchar(2) NOT NULL DEFAULT '',
  `2FA_Key` varchar(16) DEFAULT NULL,
  `Recovery` mediumtext DEFAULT NULL,
  `auth_key` varchar(32) NOT NULL,
  `avatar` varchar(255) NOT NULL DEFAULT '',
  `profile_info` text NOT NULL DEFAULT '',
  `profile_title` varchar(255) NOT NULL DEFAULT '',
  PRIMARY KEY (`ID`),
  UNIQUE KEY `Username` (`Username`),
  KEY `Email` (`Email`),
  KEY `Class` (`Class`),
  KEY `Enabled` (`Enabled`),
  KEY `torrent_pass` (`torrent_pass`),
  KEY `RequiredRatio` (`RequiredRatio`),
  KEY `cc_index` (`ipcc`),
  KEY `PermissionID` (`PermissionID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `users_leech_stats` (
  `UserID` int(10) unsigned NOT NULL,
  `Uploaded` bigint(20) unsigned NOT NULL DEFAULT 0,
  `Downloaded` bigint(20) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`UserID`),
  KEY `uls_downloaded_idx` (`Downloaded`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `torrents` (
  `ID` int(10) NOT NULL AUTO_INCREMENT,
  `GroupID` int(10) NOT NULL,
  `UserID` int(10) DEFAULT NULL,
  `Media` varchar(20) NOT NULL DEFAULT '',
  `Format` varchar(10) DEFAULT NULL,
  `Encoding` varchar(15) DEFAULT NULL,
  `Remastered` enum('0','1') NOT NULL DEFAULT '0',
  `RemasterYear` int(4) DEFAULT NULL,
  `RemasterTitle` varchar(80) NOT NULL DEFAULT '',
  `Scene` enum('0','1') NOT NULL DEFAULT '0',
  `HasLog` enum('0','1') NOT NULL DEFAULT '0',
  `HasCue` enum('0','1') NOT NULL DEFAULT '0',
  `HasLogDB` enum('0','1') NOT NULL DEFAULT '1',
  `LogScore` int(6) NOT NULL DEFAULT 0,
  `LogChecksum` enum('0','1') NOT NULL DEFAULT '1',
  `info_hash` blob NOT NULL,
  `FileCount` int(6) NOT NULL,
  `FileList` longtext NOT NULL,
  `FilePath` varchar(255) NOT NULL DEFAULT '',
  `Size` bigint(12) NOT NULL,
  `FreeTorrent` enum('0','1','2') NOT NULL DEFAULT '0',
  `FreeLeechType` enum('0','1','2','3','4','5','6','7') NOT NULL DEFAULT '0',
  `Time` datetime DEFAULT NULL,
  `Description` mediumtext DEFAULT NULL,
  `LastReseedRequest` datetime DEFAULT NULL,
  `TranscodedFrom` int(10) NOT NULL DEFAULT 0,
  PRIMARY KEY (`ID`),
  UNIQUE KEY `InfoHash` (`info_hash`(40)),
  KEY `GroupID` (`GroupID`),
  KEY `UserID` (`UserID`),
  KEY `Media` (`Media`),
  KEY `Format` (`Format`),
  KEY `Encoding` (`Encoding`),
  KEY `Time` (`Time`),
  KEY `FreeTorrent` (`FreeTorrent`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `torrents_leech_stats` (
  `TorrentID` int(10) NOT NULL,
  `Seeders` int(6) unsigned NOT NULL DEFAULT 0,
  `Leechers` int(6) unsigned NOT NULL DEFAULT 0,
  `Snatched` int(6) unsigned NOT NULL DEFAULT 0,
  `Balance` bigint(20) NOT NULL DEFAULT 0,
  `last_action` datetime DEFAULT NULL,
  PRIMARY KEY (`TorrentID`),
  KEY `tls_seeders_idx` (`Seeders`),
  KEY `tls_snatched_idx` (`Snatched`),
  KEY `tls_last_action_idx` (`last_action`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `users_freeleeches` (
  `UserID` int(10) NOT NULL,
  `TorrentID` int(10) NOT NULL,
  `Time` datetime NOT NULL,
  `Expired` tinyint(1) NOT NULL DEFAULT 0,
  `Downloaded` bigint(20) NOT NULL DEFAULT 0,
  `Uses` int(10) NOT NULL DEFAULT 1,
  PRIMARY KEY (`UserID`, `TorrentID`),
  KEY `Expired_Time` (`Expired`, `Time`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `xbt_client_whitelist` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `peer_id` varchar(20) DEFAULT NULL,
  `vstring` varchar(200) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `peer_id` (`peer_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `xbt_files_users` (
  `uid` int(11) NOT NULL,
  `active` tinyint(1) NOT NULL DEFAULT 1,
  `announced` int(11) NOT NULL DEFAULT 0,
  `completed` tinyint(1) NOT NULL DEFAULT 0,
  `downloaded` bigint(20) NOT NULL DEFAULT 0,
  `remaining` bigint(20) NOT NULL DEFAULT 0,
  `uploaded` bigint(20) NOT NULL DEFAULT 0,
  `upspeed` int(10) unsigned NOT NULL DEFAULT 0,
  `downspeed` int(10) unsigned NOT NULL DEFAULT 0,
  `corrupt` bigint(20) NOT NULL DEFAULT 0,
  `timespent` int(10) unsigned NOT NULL DEFAULT 0,
  `useragent` varchar(51) NOT NULL DEFAULT '',
  `connectable` tinyint(4) NOT NULL DEFAULT 1,
  `peer_id` binary(20) NOT NULL DEFAULT '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0',
  `fid` int(11) NOT NULL,
  `mtime` int(11) NOT NULL DEFAULT 0,
  `ip` varchar(15) NOT NULL DEFAULT '',
  PRIMARY KEY (`fid`, `uid`, `peer_id`),
  KEY `mtime_idx` (`mtime`),
  KEY `uid_active_remain_mtime_idx` (`uid`, `active`, `remaining`, `mtime`),
  KEY `remain_mtime_idx` (`remaining`, `mtime`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `xbt_snatched` (
  `uid` int(11) NOT NULL DEFAULT 0,
  `tstamp` int(11) NOT NULL,
  `fid` int(11) NOT NULL,
  `IP` varchar(15) NOT NULL,
  `seedtime` int(11) NOT NULL DEFAULT 0,
  `xbt_snatched_id` int(11) NOT NULL AUTO_INCREMENT,
  PRIMARY KEY (`xbt_snatched_id`),
  KEY `fid` (`fid`),
  KEY `uid_tstamp` (`uid`, `tstamp`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
