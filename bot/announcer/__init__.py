"""Posting milestones to the channels that watch them: routing policy, planning, pacing, the delivery
engine and the post renderer. The store's delivery queue keeps the state; nothing here speaks SQL."""
