-- Seed data for the ratings service's MySQL back end (SERVICE_VERSION=v2, DB_TYPE=mysql).
-- Same shape and values as Bookinfo's mysqldb image: database `test`, table `ratings`,
-- Reviewer1 = 5 stars (ReviewID 1), Reviewer2 = 4 stars (ReviewID 2).
-- Safe to load more than once: it resets the two rows to their seed values.

CREATE DATABASE IF NOT EXISTS test;
USE test;

CREATE TABLE IF NOT EXISTS ratings (
  ReviewID INT NOT NULL,
  Rating INT,
  PRIMARY KEY (ReviewID)
);

INSERT INTO ratings (ReviewID, Rating) VALUES
  (1, 5),
  (2, 4)
ON DUPLICATE KEY UPDATE Rating = VALUES(Rating);
